// The console's sections, in the side nav's order. `roles` only decides what the nav shows
// (a section a role cannot use would answer 403 anyway): the API's guards are the real check.
// Most routes need `tenant_admin` (owners and admins); sections other engineers add later
// (analytics, brand kits) are listed here so their pages only have to be routed.

export type StaffRole = "owner" | "admin" | "developer" | "billing" | "viewer";

export interface Section {
  /** Under /console; "" is the overview. */
  path: string;
  /** Key in the console catalogue (console.json). */
  labelKey: string;
  roles: readonly StaffRole[];
}

export const STAFF_ROLES: readonly StaffRole[] = ["owner", "admin", "developer", "billing", "viewer"];
const ADMINS: readonly StaffRole[] = ["owner", "admin"];

export const SECTIONS: readonly Section[] = [
  { path: "", labelKey: "nav.overview", roles: STAFF_ROLES },
  { path: "branding", labelKey: "nav.branding", roles: ADMINS },
  { path: "domains", labelKey: "nav.domains", roles: ADMINS },
  { path: "pricing", labelKey: "nav.pricing", roles: ADMINS },
  { path: "packages", labelKey: "nav.packages", roles: ADMINS },
  { path: "limits", labelKey: "nav.limits", roles: ADMINS },
  { path: "providers", labelKey: "nav.providers", roles: ADMINS },
  { path: "keys", labelKey: "nav.keys", roles: ADMINS },
  { path: "customers", labelKey: "nav.customers", roles: ADMINS },
  { path: "teams", labelKey: "nav.teams", roles: ADMINS },
  { path: "webhooks", labelKey: "nav.webhooks", roles: ADMINS },
  { path: "audit", labelKey: "nav.audit", roles: ADMINS },
  { path: "analytics", labelKey: "nav.analytics", roles: ["owner", "admin", "billing", "viewer"] },
  { path: "brand-kits", labelKey: "nav.brand_kits", roles: ["owner", "admin", "developer"] },
];

export function isStaff(role: string | undefined | null): role is StaffRole {
  return !!role && (STAFF_ROLES as readonly string[]).includes(role);
}

/** The sections `role` may open, in nav order. */
export function sectionsFor(role: string): Section[] {
  return SECTIONS.filter((s) => (s.roles as readonly string[]).includes(role));
}
