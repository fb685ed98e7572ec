"""Rendering mail from Jinja2 templates (text and HTML) and sending it with smtplib.

SMTP_URL forms: ``smtp://host:port`` (plain), ``smtp://host:587?starttls=1`` or
``smtp+starttls://host:587`` (STARTTLS), ``smtps://host:465`` (TLS from the start); optional
``user:password@`` to log in, and ``?cafile=/path/ca.pem`` to trust a private CA.
"""

from __future__ import annotations

import functools
import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
# Bodies in quoted-printable: readable in the raw message, safe for any line length.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    auto_reload=False,  # templates ship with the code: no stat() of the file per mail
)


class _Compat32(Compat32):
    """compat32, with a header that fits on its line written as it is: the Header class that
    folds each one (13 per welcome mail) took a sixth of the mail's CPU to change nothing."""

    def fold_binary(self, name: str, value: str | Header) -> bytes:
        if (
            type(value) is str
            and value.isascii()
            and len(name) + len(value) + 2 <= (self.max_line_length or 78)
            and "\r" not in value
            and "\n" not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)  # type: ignore[arg-type]


_POLICY = _Compat32()


@functools.lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, bool, str]:
    """(address, whether it is ASCII, From header) of MAIL_FROM, parsed once."""
    name, address = parseaddr(sender)
    from_header = formataddr((name, address), charset="utf-8") if name else sender
    return address, address.isascii(), from_header


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # plain | starttls | tls
    username: str | None = None
    password: str | None = None
    cafile: str | None = None


def parse_smtp_url(url: str) -> SmtpSettings:
    parts = urlsplit(url)
    query = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
    scheme = parts.scheme.lower()
    if scheme == "smtps":
        security, port = "tls", 465
    elif scheme == "smtp+starttls" or query.get("starttls", "").lower() in ("1", "true", "yes"):
        security, port = "starttls", 587
    elif scheme == "smtp":
        security, port = "plain", 25
    else:
        raise ValueError(f"SMTP_URL scheme must be smtp, smtp+starttls or smtps, not {scheme!r}")
    return SmtpSettings(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        cafile=query.get("cafile"),
    )


def render(
    template: str, sender: str, recipient: str, event_key: str, **context: object
) -> Message:
    """The message for ``template`` (``<name>.subject.txt``, ``.txt``, ``.html``). The Message-ID
    derives from the event key, so a receiver can drop the rare duplicate (see notifications).

    Built with the compat32 MIME classes: the ``email.policy.default`` header machinery cost
    more CPU than the rest of a welcome mail's work together. An address with non-ASCII
    characters (RFC 6531) still takes that policy, which smtplib sends with SMTPUTF8."""
    subject = _env.get_template(f"{template}.subject.txt").render(**context).strip()
    text = _env.get_template(f"{template}.txt").render(**context)
    html = _env.get_template(f"{template}.html").render(**context)
    digest = hashlib.sha256(event_key.encode()).hexdigest()[:32]
    msg: Message
    _, sender_ascii, from_header = _sender(sender)
    if sender_ascii and recipient.isascii():
        # A boundary of our own: without one, the generator compiles a regular expression per
        # message to pick one that occurs in no part (a tenth of a welcome mail's CPU). "=_"
        # cannot occur in a quoted-printable body (its "=" is always "=3D" or "=XX").
        msg = MIMEMultipart("alternative", boundary=f"=_{digest}", policy=_POLICY)
        # compat32 takes a Header and a Charset where typeshed has only str (the ignores).
        subject_header = subject if subject.isascii() else Header(subject, "utf-8")
        msg["Subject"] = subject_header  # type: ignore[assignment]
        msg["From"] = from_header
        msg["To"] = recipient
        msg.attach(MIMEText(text, "plain", _UTF8))  # type: ignore[arg-type]
        msg.attach(MIMEText(html, "html", _UTF8))  # type: ignore[arg-type]
    else:
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = subject, sender, recipient
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{digest}@workteam.mail>"
    return msg


@functools.lru_cache(maxsize=4)
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    # Loading the system's CA store takes ~20 ms of CPU: once per process, not once per mail.
    return ssl.create_default_context(cafile=cafile)


def _connect(cfg: SmtpSettings, timeout: float) -> smtplib.SMTP:
    client: smtplib.SMTP
    if cfg.security == "tls":
        client = smtplib.SMTP_SSL(
            cfg.host, cfg.port, timeout=timeout, context=_tls_context(cfg.cafile)
        )
    else:
        client = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
    try:
        if cfg.security == "starttls":
            client.starttls(context=_tls_context(cfg.cafile))
        if cfg.username:
            client.login(cfg.username, cfg.password or "")
    except BaseException:
        client.close()
        raise
    return client


class Mailer:
    """One SMTP session for several messages (a batch of welcome mails): connected on the
    first send, closed with QUIT by ``close``. A connection the server dropped between two
    messages is opened again once."""

    def __init__(self, smtp_url: str, timeout: float = 10.0) -> None:
        self.cfg = parse_smtp_url(smtp_url)
        self.timeout = timeout
        self._client: smtplib.SMTP | None = None

    def send(self, msg: Message, recipient: str | None = None) -> None:
        """Send ``msg``; ``recipient``, its one recipient as ``render`` was given it, spares
        smtplib parsing every address header of the message for the envelope."""
        envelope: dict[str, object] = {}
        if recipient is not None:
            envelope = {"from_addr": _sender(str(msg["From"]))[0], "to_addrs": [recipient]}
        if self._client is not None:
            try:
                self._client.send_message(msg, **envelope)  # type: ignore[arg-type]
                return
            except smtplib.SMTPServerDisconnected:
                self._client = None  # idle too long for the server: connect again below
        self._client = _connect(self.cfg, self.timeout)
        self._client.send_message(msg, **envelope)  # type: ignore[arg-type]

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send(msg: Message, smtp_url: str, timeout: float = 10.0) -> None:
    """One message in a session of its own."""
    with Mailer(smtp_url, timeout) as mailer:
        mailer.send(msg)
