"""Random object ids with Stripe's prefixes."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
# Stripe ids carry 24 random characters after the prefix; clients sometimes size columns on it.
_ID_LENGTH = 24


def new_id(prefix):
    """A fresh id such as `pi_3Nx...`."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(_ID_LENGTH))
