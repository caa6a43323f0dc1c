"""The HTTP part of the probe: one GET for the status and security headers, and the
plain-HTTP redirect when asked.

The request goes over a verified connection first; when the chain does not verify, the
headers are read anyway over an unverified one and :attr:`Observations.http_verified`
says so (the chain's own verdict is :mod:`trustwire.probe.tls_scan`'s).
"""

from __future__ import annotations

import http.client
import ssl

from trustwire.probe.attempt import Runner
from trustwire.probe.observations import Observations
from trustwire.probe.target import ProbeTarget

__all__ = ["check_http", "http_request"]


def http_request(target: ProbeTarget) -> bytes:
    """The raw GET the probe sends where a handshake must be followed by a request."""
    return (f"GET {target.path} HTTP/1.1\r\nHost: {target.server_name}\r\n"
            "User-Agent: trustwire-probe\r\nConnection: close\r\n\r\n").encode()


def check_http(runner: Runner, obs: Observations) -> None:
    """GET the target's path: status and headers into ``obs`` (and the redirect, if asked)."""
    target, options = runner.target, runner.options
    cert = (str(options.cert), str(options.key)) if options.cert and options.key else None
    for verified in (True, False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verified:
            if options.ca:
                ctx.load_verify_locations(cafile=str(options.ca))
            else:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*cert)
        connection = http.client.HTTPSConnection(target.host, target.port, context=ctx,
                                                 timeout=options.timeout)
        try:
            connection.request("GET", target.path, headers={
                "Host": target.server_name, "User-Agent": "trustwire-probe",
                "Accept-Encoding": "gzip, deflate, br"})  # does it compress? (BREACH)
            response = connection.getresponse()
            obs.http_status = response.status
            obs.http_headers = {k.lower(): v for k, v in response.getheaders()}
            obs.http_verified = verified
            response.read(65536)
            break
        except ssl.SSLCertVerificationError:
            continue  # read the headers anyway, over an unverified connection, and say so
        except (OSError, http.client.HTTPException) as exc:
            obs.http_error = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            break
        finally:
            connection.close()
    runner.progress(1)
    if not options.check_redirect:
        obs.untested.append(("HTTP to HTTPS redirect", "not checked: pass --check-redirect "
                                                       "(and --http-port if not 80)"))
    else:
        plain = http.client.HTTPConnection(target.host, options.http_port, timeout=options.timeout)
        try:
            plain.request("GET", target.path, headers={"Host": target.server_name})
            response = plain.getresponse()
            obs.redirect = (response.status, response.getheader("Location"))
        except (OSError, http.client.HTTPException) as exc:
            obs.redirect = (None, f"cannot reach http://{target.host}:{options.http_port}: {exc}")
        finally:
            plain.close()
