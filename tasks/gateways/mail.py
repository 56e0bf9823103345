"""The only module that speaks SMTP; every SMTP failure becomes transient, refused or misconfigured here."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import unquote, urlsplit

from tasks.domain.addresses import InvalidAddress, email_address
from tasks.domain.errors import TransientError

# Long enough for a slow relay to accept a message, short enough that a dead one frees the worker
# well inside send_email's time limit.
DEFAULT_SMTP_TIMEOUT_SECONDS = 20.0
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# A worker thread keeps its connection to the server between messages: on a warm relay most of a message's
# cost was the connection (TCP, greeting, EHLO, STARTTLS and login, QUIT), not the message. A kept connection
# idle longer than this is closed instead of reused (relays drop idle clients after one to five minutes), and
# one that carried this many messages is closed after the last (relays cap messages per connection).
KEEP_IDLE_SECONDS = 30.0
KEEP_MESSAGES = 100


class MailUnavailable(TransientError):
    """The mail server did not take the message this time (4xx, connection, timeout): retry later."""


class MailRejected(Exception):
    """The mail server refused this message for good (5xx for the recipient or the content)."""

    def __init__(self, code: int | None, message: str):
        super().__init__(f"{code} {message}" if code else message)
        self.code = code


class UnsendableEmail(MailRejected):
    """The message can never be composed (its recipient or reply-to is not one address): final, like a 5xx."""

    def __init__(self, message: str):
        super().__init__(None, message)


class MailMisconfigured(Exception):
    """The server refused our credentials, sender or TLS set-up: no message can go until someone fixes it."""


@dataclass(frozen=True)
class Outgoing:
    """One email as the gateway sends it: everything the message needs, nothing about our rows."""

    email_id: int
    recipient: str
    subject: str
    text: str
    html: str
    dedupe_key: str
    reply_to: str | None = None
    # The seller's From: its display name, and its own address where MAIL_SELLER_DOMAINS allows it.
    from_name: str | None = None
    from_address: str | None = None


class MailGateway:
    """Sends messages over SMTP to one server, named by an smtp://, smtp+starttls:// or smtps:// URL."""

    def __init__(
        self,
        url: str,
        sender: str,
        timeout_s: float = DEFAULT_SMTP_TIMEOUT_SECONDS,
        seller_domains: frozenset[str] = frozenset(),
    ):
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise MailMisconfigured(f"SMTP URL {parts.scheme}://{parts.hostname or ''} is not usable")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or DEFAULT_PORTS[parts.scheme]
        self._login = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        self.sender = sender
        self.domain = sender_domain(sender)
        # What a kept connection is kept under: the same server, login and EHLO name.
        self._server = (self._scheme, self._host, self._port, self._login, self.domain)
        self.timeout_s = timeout_s
        # Domains whose addresses a seller may send From (our SMTP relay is authorised to send for them).
        self.seller_domains = frozenset(domain.lower() for domain in seller_domains)

    def from_header(self, outgoing: Outgoing) -> str:
        """The seller's name at its own address when its domain is allowed, else at MAIL_FROM's address."""
        name, address = parseaddr(self.sender)
        if outgoing.from_address:
            chosen = _one_address(outgoing.from_address, "from (the seller's email_from_address)")
            if chosen.rpartition("@")[2].lower() in self.seller_domains:
                address = chosen
        if "\n" in (outgoing.from_name or "") or "\r" in (outgoing.from_name or ""):
            raise UnsendableEmail("the seller's From name holds a line break")
        return formataddr((outgoing.from_name or name, address))

    def message_id(self, email_id: int) -> str:
        """Stable per outbox row, so a second delivery of one email is recognisable as the same message."""
        return f"<remit-email-{email_id}@{self.domain}>"

    def compose(self, outgoing: Outgoing) -> EmailMessage:
        """A multipart/alternative message: plain text first, HTML preferred by clients that can show it.

        Raises UnsendableEmail when no such message can exist: an address that is not exactly one
        address, or a header value holding a line break.
        """
        message = EmailMessage()
        try:
            message["From"] = self.from_header(outgoing)
            message["To"] = _one_address(outgoing.recipient, "recipient")
            message["Subject"] = outgoing.subject
            message["Date"] = formatdate(localtime=False)
            message["Message-ID"] = self.message_id(outgoing.email_id)
            message["X-Remit-Dedupe-Key"] = outgoing.dedupe_key
            if outgoing.reply_to:
                message["Reply-To"] = _one_address(outgoing.reply_to, "reply-to (the seller's support_email)")
        except ValueError as malformed:  # the email package refuses CR/LF in any header value
            raise UnsendableEmail(f"a header cannot be composed: {malformed}") from None
        message.set_content(outgoing.text)
        message.add_alternative(outgoing.html, subtype="html")
        return message

    def send(self, outgoing: Outgoing) -> str:
        """Hand the message to the server; return its Message-ID or raise one of this module's errors.

        The connection is this thread's kept one when it still answers RSET, else a new one; it is kept
        after a message the server accepted and closed after any failure.
        """
        message = self.compose(outgoing)
        try:
            kept = self._checkout()
            try:
                # The envelope names the one checked recipient, never whatever the headers might list.
                # Bounces come back to MAIL_FROM whatever From the seller's email shows.
                kept.smtp.send_message(message, from_addr=parseaddr(self.sender)[1], to_addrs=[message["To"]])
            except BaseException:
                _quit(kept.smtp)
                raise
            self._checkin(kept)
        except smtplib.SMTPRecipientsRefused as refused:
            raise _recipients_error(refused) from refused
        except (
            smtplib.SMTPSenderRefused,
            smtplib.SMTPAuthenticationError,
            smtplib.SMTPNotSupportedError,
            smtplib.SMTPHeloError,
            smtplib.SMTPConnectError,
            ssl.SSLCertVerificationError,
        ) as wrong:
            raise _configuration_error(wrong) from wrong
        except smtplib.SMTPResponseException as answered:
            raise _response_error(answered.smtp_code, answered.smtp_error) from answered
        except (smtplib.SMTPException, OSError) as lost:
            raise MailUnavailable(f"{type(lost).__name__}: {lost}") from lost
        return message["Message-ID"]

    def probe(self) -> str:
        """Connect, greet (EHLO, STARTTLS and login as configured) and NOOP; the server's name, or raise."""
        try:
            smtp = self._connect()
            try:
                smtp.ehlo_or_helo_if_needed()
                code, answer = smtp.noop()
                if code != 250:
                    raise MailUnavailable(f"NOOP answered {code} {answer.decode(errors='replace')}")
                return (
                    smtp.ehlo_resp.decode(errors="replace").splitlines()[0] if smtp.ehlo_resp else self._host
                )
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as lost:
            raise MailUnavailable(f"{type(lost).__name__}: {lost}") from lost

    def _checkout(self) -> _Kept:
        """This thread's kept connection to the server if it is fresh and answers RSET, else a new one."""
        kept = _kept_connections().pop(self._server, None)
        if kept is not None:
            if time.monotonic() - kept.idle_since <= KEEP_IDLE_SECONDS:
                try:
                    # Also proves the connection alive: one that died idle fails here, before any message.
                    code, _ = kept.smtp.rset()
                    if code == 250:
                        return kept
                except (smtplib.SMTPException, OSError):
                    pass
            # Closed without a goodbye: a QUIT on a connection dropped silently would wait out the timeout.
            kept.smtp.close()
        return _Kept(self._server, self._connect())

    def _checkin(self, kept: _Kept) -> None:
        """Keep the connection for this thread's next message, or say goodbye once it carried enough."""
        kept.messages += 1
        if kept.messages >= KEEP_MESSAGES:
            _quit(kept.smtp)
            return
        kept.idle_since = time.monotonic()
        _kept_connections()[kept.key] = kept  # _checkout took the previous one out

    def _connect(self) -> smtplib.SMTP:
        if self._scheme == "smtps":
            smtp = smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self.domain,
                timeout=self.timeout_s,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, local_hostname=self.domain, timeout=self.timeout_s)
        try:
            if self._scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self._login is not None:
                smtp.login(*self._login)
        except BaseException:
            smtp.close()
            raise
        return smtp


@dataclass
class _Kept:
    """A connection a thread keeps between messages: its server, what it carried, since when it is idle."""

    key: tuple
    smtp: smtplib.SMTP
    messages: int = 0
    idle_since: float = 0.0


_thread_connections = threading.local()


def _kept_connections() -> dict[tuple, _Kept]:
    """This thread's kept connections, by server, port, login and EHLO name."""
    kept = getattr(_thread_connections, "by_server", None)
    if kept is None:
        kept = _thread_connections.by_server = {}
    return kept


def close_kept_connections() -> int:
    """Say goodbye on this thread's kept connections and forget them; how many there were. (Tests; a
    worker's connections end with its process.)"""
    kept = _kept_connections()
    closed = len(kept)
    for connection in kept.values():
        _quit(connection.smtp)
    kept.clear()
    return closed


def _quit(smtp: smtplib.SMTP) -> None:
    # Once DATA was accepted the message is the server's; a failed goodbye must not make us send it again.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _one_address(raw: str, field: str) -> str:
    try:
        return email_address(raw, field)
    except InvalidAddress as wrong:
        raise UnsendableEmail(str(wrong)) from None


def sender_domain(sender: str) -> str:
    """The domain of MAIL_FROM's address, which names our Message-IDs and our EHLO."""
    address = parseaddr(sender)[1]
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        raise MailMisconfigured(f"MAIL_FROM {sender!r} has no address with a domain")
    return domain


def _response_error(code: int, text: bytes | str) -> Exception:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if 500 <= code < 600:
        return MailRejected(code, message)
    return MailUnavailable(f"{code} {message}")


def _recipients_error(refused: smtplib.SMTPRecipientsRefused) -> Exception:
    # One recipient per message, so the answer about it is the answer about the message.
    code, text = next(iter(refused.recipients.values()), (451, b"recipient refused"))
    return _response_error(code, text)


def _configuration_error(error: Exception) -> Exception:
    code = getattr(error, "smtp_code", None)
    if code is not None and 400 <= code < 500:
        return MailUnavailable(f"{code} {getattr(error, 'smtp_error', error)}")
    return MailMisconfigured(f"{type(error).__name__}: {error}")


_override: list[MailGateway] = []


def get_mail_gateway() -> MailGateway:
    """The gateway in use: the one a test or sandbox installed, or one built from SMTP_URL and MAIL_FROM."""
    if _override:
        return _override[-1]
    from workers.settings import get_settings

    settings = get_settings()
    return MailGateway(settings.smtp_url, settings.mail_from, seller_domains=settings.mail_seller_domains)


def use_mail_gateway(gateway: MailGateway | None) -> None:
    """Install (or with None, remove) a gateway in place of the configured one."""
    _override.clear()
    if gateway is not None:
        _override.append(gateway)
