"""Stripe-Signature headers: one `v1` HMAC-SHA256 per endpoint secret over `"{t}.{body}"`."""

import hashlib
import hmac


def signature_header(payload, secrets, timestamp):
    """The header value for `payload` (bytes) signed at `timestamp`."""
    signed = f"{timestamp}.".encode() + payload
    parts = [f"t={timestamp}"]
    for secret in secrets:
        parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)
