"""Random object ids with Stripe's prefixes."""

import random
import string

_ALPHABET = string.ascii_letters + string.digits
# Stripe ids carry 24 random characters after the prefix; clients sometimes size columns on it.
_ID_LENGTH = 24


def new_id(prefix):
    """A fresh id such as `pi_3Nx...`; uniqueness matters here, unpredictability does not."""
    return prefix + "_" + "".join(random.choices(_ALPHABET, k=_ID_LENGTH))
