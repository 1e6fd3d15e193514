"""The messages sign-in sends, in the tenant's name (from its `branding.sender_email` when
set, else `MEDIAHUB_MAIL_FROM`). Each carries its link first, so a reader (or a test) finds
it at once. Sent in the background (`Mailer.send_later`): an answer takes as long whether or
not a message went out."""

from __future__ import annotations

from gateway.core.mail import Mail
from gateway.core.runtime import Runtime
from tenants.models import Tenant


def _send(runtime: Runtime, tenant: Tenant, to: str, subject: str, text: str) -> None:
    sender = tenant.branding.sender_email
    runtime.mailer.send_later(Mail(
        to=to, subject=subject, text=text, sender_name=tenant.name,
        sender_address=sender if isinstance(sender, str) and "@" in sender else None))


def _hours(seconds: int) -> str:
    return f"{seconds // 3600} hours" if seconds >= 7200 else f"{max(1, seconds // 60)} minutes"


def verification(runtime: Runtime, tenant: Tenant, to: str, link: str) -> None:
    ttl = _hours(runtime.settings.verification_link_ttl_s)
    _send(runtime, tenant, to, f"Confirm your email for {tenant.name}",
          f"{link}\n\nOpen this link to confirm your email address and finish signing up "
          f"for {tenant.name}. It works once, for {ttl}.\n\nIf you did not sign up, ignore "
          "this message.\n")


def already_registered(runtime: Runtime, tenant: Tenant, to: str, link: str) -> None:
    _send(runtime, tenant, to, f"Your {tenant.name} account",
          f"{link}\n\nSomeone (perhaps you) tried to sign up for {tenant.name} with this "
          "address, which already has an account. Sign in, or reset your password at the "
          "link above.\n\nIf it was not you, ignore this message.\n")


def _hours_ar(seconds: int) -> str:
    return (f"{seconds // 3600} ساعة" if seconds >= 7200
            else f"{max(1, seconds // 60)} دقيقة")


def reset(runtime: Runtime, tenant: Tenant, to: str, link: str,
          locale: str | None = None) -> None:
    """The password reset link, in the user's chosen `locale` (`ar`; else English)."""
    seconds = runtime.settings.email_link_ttl_s
    if locale == "ar":
        _send(runtime, tenant, to, f"إعادة تعيين كلمة مرور {tenant.name}",
              f"{link}\n\nافتح هذا الرابط لاختيار كلمة مرور جديدة لحسابك في {tenant.name}. "  # noqa: RUF001 (Arabic)
              f"يعمل الرابط مرة واحدة، لمدة {_hours_ar(seconds)}، ويُنهي جلساتك الأخرى.\n\n"
              "إن لم تطلب ذلك فتجاهل هذه الرسالة: تبقى كلمة مرورك كما هي.\n")
        return
    _send(runtime, tenant, to, f"Reset your {tenant.name} password",
          f"{link}\n\nOpen this link to choose a new password for {tenant.name}. It works "
          f"once, for {_hours(seconds)}, and signs out your other sessions.\n\nIf you did "
          "not ask for it, ignore this message: your password stays as it is.\n")


def magic(runtime: Runtime, tenant: Tenant, to: str, link: str,
          locale: str | None = None) -> None:
    """The sign-in link, in the user's chosen `locale` (`ar`; else English)."""
    seconds = runtime.settings.email_link_ttl_s
    if locale == "ar":
        _send(runtime, tenant, to, f"تسجيل الدخول إلى {tenant.name}",
              f"{link}\n\nافتح هذا الرابط لتسجيل الدخول إلى {tenant.name}. يعمل الرابط مرة "  # noqa: RUF001 (Arabic)
              f"واحدة، لمدة {_hours_ar(seconds)}.\n\nإن لم تطلب ذلك فتجاهل هذه الرسالة.\n")
        return
    _send(runtime, tenant, to, f"Sign in to {tenant.name}",
          f"{link}\n\nOpen this link to sign in to {tenant.name}. It works once, for "
          f"{_hours(seconds)}.\n\nIf you did not ask for it, ignore this message.\n")


def invitation(runtime: Runtime, tenant: Tenant, to: str, role: str, link: str) -> None:
    ttl = _hours(runtime.settings.verification_link_ttl_s)
    _send(runtime, tenant, to, f"You are invited to {tenant.name}",
          f"{link}\n\nYou were invited to {tenant.name} as {role}. Open this link to choose "
          f"your password. It works once, for {ttl}.\n")
