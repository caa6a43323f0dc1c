"""When a certificate is due for renewal, and renewing it then. Pure decisions, one disk step.

``--before 1/3`` means: renew once a third of the certificate's lifetime is
left. A server or tunnel watching the files picks the new certificate up by
itself (see :mod:`trustwire.ops.reload`).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from trustwire.errors import CertificateNotFound, ConfigError
from trustwire.pki.ca import utcnow
from trustwire.pki.inventory import Record
from trustwire.pki.store import Home

__all__ = ["crl_due", "due_at", "parse_before", "renew_if_due"]


def parse_before(text: str) -> float:
    """``1/3``, ``0.33`` or ``33%`` -> a fraction strictly between 0 and 1.

    Raises:
        ConfigError: anything else.
    """
    value = text.strip()
    try:
        fraction = float(value[:-1]) / 100 if value.endswith("%") else float(Fraction(value))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--before {text!r}: give a fraction of the lifetime like 1/3, "
                          "0.33 or 33%") from None
    if not 0 < fraction < 1:
        raise ConfigError(f"--before {text!r} must be between 0 and 1 (exclusive)")
    return fraction


def due_at(record: Record, before: float) -> dt.datetime:
    """The moment ``before`` of the certificate's lifetime is left."""
    return record.not_after - record.lifetime * before


def renew_if_due(home: Home, name: str, *, before: float, now: dt.datetime | None = None,
                 passphrase: bytes | None = None) -> Record | None:
    """Renew NAME (fresh key, same names) if it is due; None when it is not yet.

    Raises:
        CertificateNotFound: no current certificate named NAME.
    """
    now = now or utcnow()
    with home.inventory() as inventory:
        record = inventory.current(name)
    if record is None:
        raise CertificateNotFound(f"there is no current certificate named {name!r} to keep fresh",
                                  hint=f"issue one first: trustwire cert issue {name} --server")
    if now < due_at(record, before):
        return None
    return home.renew(name, passphrase=passphrase, now=now)


def crl_due(home: Home, now: dt.datetime, before: float = 1 / 3) -> bool:
    """True when less than ``before`` of the CRL's validity is left (or it has expired)."""
    crl = home.crl()
    if crl.next_update_utc is None:
        return False
    window = crl.next_update_utc - crl.last_update_utc
    return now >= crl.next_update_utc - window * before
