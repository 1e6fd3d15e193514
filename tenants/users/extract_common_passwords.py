"""Writes `common-passwords.txt` beside this file: the passwords that sign-up, reset and
invitations refuse as too common.

Source: the `passwords` frequency list of the `zxcvbn` package (Dropbox's password strength
estimator, MIT licence; version 4.5.0 ships 30,000 passwords ranked by how often they appeared
in leaked password dumps). Kept: the entries of at least 8 characters (the lowest
`MEDIAHUB_PASSWORD_MIN_LENGTH` allows; shorter ones are refused by length anyway), lower-cased,
in rank order. Run once, offline, when the list should change:

    uv run --no-project --with zxcvbn==4.5.0 python tenants/users/extract_common_passwords.py
"""

from __future__ import annotations

from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 8


def main() -> None:
    seen: set[str] = set()
    kept: list[str] = []
    for word in FREQUENCY_LISTS["passwords"]:
        word = word.strip().lower()
        if len(word) >= MIN_LENGTH and word not in seen:
            seen.add(word)
            kept.append(word)
    target = Path(__file__).with_name("common-passwords.txt")
    target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(kept)} passwords written to {target}")


if __name__ == "__main__":
    main()
