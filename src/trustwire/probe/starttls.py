"""The plaintext dialogues that turn a connection into TLS (STARTTLS and kin). Pure, sans-IO.

Mail, directory and database servers often speak TLS on their plain port only after the
client asks in the service's own protocol: SMTP and IMAP ``STARTTLS``, POP3 ``STLS``, FTP
``AUTH TLS``, the LDAP StartTLS extended operation, PostgreSQL's SSLRequest, MySQL's SSL
request packet. :func:`negotiation` returns one :class:`Negotiation` per protocol: feed it
the server's bytes with :meth:`~Negotiation.receive_data` (``b""`` means the server closed),
and :meth:`~Negotiation.next_step` says what to do next, as h11's ``next_event`` does:

- :class:`Send`: write these bytes, then ask again (there may be buffered replies);
- ``NEED_DATA``: read more from the server, feed it, ask again;
- :class:`StartTLS`: write ``send`` (if any) and begin the TLS handshake now;
- :class:`Failed`: give up; ``reason`` is one sentence, ``hint`` says what to do.

Each dialogue is the shortest one real clients use (testssl ``-t``, sslyze
``--starttls``, ``openssl s_client -starttls``), because the probe opens one connection
per handshake: SMTP costs three round trips, PostgreSQL and LDAP one.

Edge cases. A server that agrees to start TLS and sends more plaintext in the same breath
fails the dialogue: those bytes are not TLS, and a client that kept them would be open to
plaintext injection (CVE-2011-0411, CVE-2021-23222). The server may send at most
:data:`MAX_DIALOGUE` bytes before TLS starts. Nothing here reads a clock: the IO adapter
(:func:`trustwire.probe.connect.open_connection`) owns the deadline and asks
:meth:`Negotiation.timed_out` for the sentence.
"""

from __future__ import annotations

from collections.abc import Callable

from trustwire.probe.starttls_binary import Ldap, Mysql, Postgres
from trustwire.probe.starttls_dialogue import MAX_DIALOGUE, Failed, Negotiation, Send, StartTLS, Step
from trustwire.probe.starttls_text import Ftp, Imap, Pop3, Smtp

# The steps are re-exported, so the IO adapter imports from one place.
__all__ = ["MAX_DIALOGUE", "PROTOCOLS", "Failed", "Negotiation", "Send", "StartTLS", "Step",
           "negotiation"]


PROTOCOLS = ("smtp", "imap", "pop3", "ftp", "ldap", "postgres", "mysql")
"""The names ``--starttls`` takes, as testssl and ``openssl s_client -starttls`` spell them."""


def negotiation(protocol: str, *, client_name: str = "trustwire.invalid") -> Negotiation:
    """A fresh dialogue for ``protocol`` (one of :data:`PROTOCOLS`).

    Args:
        protocol: the service's protocol, lower case.
        client_name: our name in SMTP's EHLO (RFC 5321 wants a domain; ``.invalid`` says
            plainly that it is not one).

    Raises:
        ValueError: for a protocol not in :data:`PROTOCOLS`.

    >>> n = negotiation("pop3")
    >>> n.next_step()
    NEED_DATA
    >>> n.receive_data(b"+OK ready\\r\\n")
    >>> n.next_step()
    Send(data=b'STLS\\r\\n')
    >>> n.receive_data(b"+OK begin TLS\\r\\n")
    >>> n.next_step()
    StartTLS(send=b'')
    """
    makers: dict[str, Callable[[], Negotiation]] = {
        "smtp": lambda: Smtp(client_name), "imap": Imap, "pop3": Pop3, "ftp": Ftp,
        "ldap": Ldap, "postgres": Postgres, "mysql": Mysql}
    try:
        maker = makers[protocol]
    except KeyError:
        raise ValueError(f"no STARTTLS dialogue for {protocol!r}: use one of "
                         f"{', '.join(PROTOCOLS)}") from None
    return maker()
