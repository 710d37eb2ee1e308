"""A real SMTP server for the email tests: aiosmtpd on 127.0.0.1, any port.

Usage: smtp_sink.py DIR [--headers-only]. Prints the port it listens on, then writes every
message it accepts as DIR/<n>.json: the envelope, every header (in order), and each MIME
leaf part (content type and decoded text); with --headers-only no body is parsed and
"parts" is empty (the crash tests count thousands of messages by Message-ID). The file is
written before the server answers 250. Recipients whose address starts with "tempfail" get
451, "reject" get 550, so the tests can drive the worker's retry and failure paths.
Runs until its standard input closes.
"""

import json
import os
import socket
import sys
from email import message_from_bytes
from email.parser import BytesHeaderParser
from email.policy import compat32, default

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, headers_only):
        self.out = out
        self.headers_only = headers_only
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("tempfail"):
            return "451 4.3.0 try again later"
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parts = []
        if self.headers_only:
            msg = BytesHeaderParser(policy=compat32).parsebytes(envelope.original_content)
        else:
            msg = message_from_bytes(envelope.original_content, policy=default)
            for part in msg.walk():
                if part.is_multipart():
                    continue
                parts.append({"type": part.get_content_type(), "body": part.get_content()})
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "content_type": msg.get_content_type(),
            "parts": parts,
            # The bytes as received (latin-1: one character per byte), for DKIM checks.
            "raw": envelope.original_content.decode("latin-1"),
        }
        self.n += 1
        tmp = os.path.join(self.out, f".{self.n}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, f"{self.n}.json"))
        return "250 Message accepted"


def main():
    out = sys.argv[1]
    headers_only = "--headers-only" in sys.argv[2:]
    # A free port (aiosmtpd's Controller cannot listen on port 0 itself).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    controller = Controller(Sink(out, headers_only), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
