"""Email addresses as Remit accepts them: exactly one address, no display name, no control characters.

Every address that enters (the seed, an ERP sync, a test factory) and every one the outbox sends to
goes through email_address, so a header can never carry a second recipient or an injected line.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

# RFC 5321 caps a forward path at 256 octets including the angle brackets; our columns hold 320.
MAX_ADDRESS_CHARS = 254


class InvalidAddress(ValueError):
    """Not one usable email address; the message says what is wrong without repeating the input."""


def email_address(raw: object, field: str = "email address") -> str:
    """The address in normal form (domain lower-cased), or InvalidAddress naming the field and the fault.

    Deliverability is not checked (no DNS from workers), and names under .test are accepted: an
    undeliverable domain is the mail server's refusal to report, not a malformed header.
    """
    if not isinstance(raw, str):
        raise InvalidAddress(f"{field} must be text, not {type(raw).__name__}")
    if len(raw) > MAX_ADDRESS_CHARS:
        raise InvalidAddress(f"{field} is {len(raw)} characters; at most {MAX_ADDRESS_CHARS} are allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in raw):
        raise InvalidAddress(f"{field} contains a control character (a line break, tab or NUL)")
    try:
        return validate_email(raw, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as wrong:
        raise InvalidAddress(f"{field} is not one valid address: {wrong}") from None
