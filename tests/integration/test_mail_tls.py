"""tasks.mail.send against aiosmtpd with STARTTLS and login, and with TLS from the start (a
self-signed certificate made by openssl, trusted through SMTP_URL's ``cafile``)."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tasks.mail import render, send
from tests.fixtures_worker import MailSink, free_port

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return crt, key


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer", b"p@ss:word")
    return AuthResult(success=ok)


def _message(to: str):
    return render("welcome", "Workteam <no-reply@workteam.example>", to, f"tls:{to}",
                  org_name="Org", name="N", public_url="http://x")


def test_starttls_with_login(cert) -> None:
    crt, key = cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    sink = MailSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, tls_context=context,
                            require_starttls=True, authenticator=_authenticator,
                            auth_required=True)
    controller.start()
    try:
        url = f"smtp+starttls://mailer:p%40ss%3Aword@127.0.0.1:{sink.port}?cafile={crt}"
        send(_message("a@example.com"), url, timeout=10)
        assert [m.rcpt_tos for m in sink.messages] == [["a@example.com"]]
        with pytest.raises(smtplib.SMTPException):  # a wrong password is refused
            send(_message("b@example.com"), url.replace("p%40ss", "wrong"), timeout=3)
        assert len(sink.messages) == 1
    finally:
        controller.stop()


def test_tls_from_the_start(cert) -> None:
    crt, key = cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    sink = MailSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, ssl_context=context)
    controller.start()
    try:
        send(_message("c@example.com"), f"smtps://127.0.0.1:{sink.port}?cafile={crt}", timeout=10)
        assert [m.rcpt_tos for m in sink.messages] == [["c@example.com"]]
        with pytest.raises(ssl.SSLError):  # an untrusted certificate is refused
            send(_message("d@example.com"), f"smtps://127.0.0.1:{sink.port}", timeout=10)
    finally:
        controller.stop()
