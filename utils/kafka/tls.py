"""A TLS check before any client starts: an untrusted certificate or a wrong host name is a clear,
fatal error, whichever client library runs (both would otherwise retry until a timeout)."""

from __future__ import annotations

import socket
import ssl

from utils.kafka.interface import AuthenticationFailed, BrokerUnavailable
from utils.settings import KafkaSettings

HANDSHAKE_TIMEOUT_S = 10.0


def check_tls(settings: KafkaSettings) -> None:
    """For SSL and SASL_SSL: one TLS handshake with the first bootstrap server, verifying its
    certificate against KAFKA_SSL_CAFILE (or the system's CAs) and its host name, as the clients do.
    Raises AuthenticationFailed if the broker cannot be trusted, BrokerUnavailable if it does not
    answer; does nothing for other protocols."""
    if not settings.security_protocol.endswith("SSL"):
        return
    host, _, port = settings.bootstrap_servers.split(",")[0].strip().rpartition(":")
    context = ssl.create_default_context(cafile=settings.ssl_cafile)  # CERT_REQUIRED, check_hostname
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    try:
        with socket.create_connection((host, int(port)), timeout=HANDSHAKE_TIMEOUT_S) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return
    except ssl.SSLCertVerificationError as error:
        raise AuthenticationFailed(
            f"TLS: the certificate of {host}:{port} is not trusted ({error.verify_message}); "
            f"CA file: {settings.ssl_cafile or 'the system store'} (KAFKA_SSL_CAFILE)"
        ) from error
    except ssl.SSLError as error:
        raise AuthenticationFailed(f"TLS handshake with {host}:{port} failed: {error}") from error
    except OSError as error:
        raise BrokerUnavailable(f"{host}:{port}: {error}") from error
