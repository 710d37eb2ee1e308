"""Verifies the DKIM signature of a message with dkimpy, the public key standing in for DNS.

Usage: dkim_verify.py MESSAGE PUBLIC_KEY.der ALGORITHM
MESSAGE is the raw message; PUBLIC_KEY.der the signer's public key (SubjectPublicKeyInfo,
DER, as `openssl pkey -pubout -outform DER` writes it); ALGORITHM `rsa` or `ed25519`. The
key is answered to whatever record dkimpy asks for, and the record's name is printed, so
the caller can check the selector and domain. Prints `verified NAME` and exits 0 when the
signature verifies, else `failed NAME` with dkimpy's log and exits 1.
"""

import base64
import io
import logging
import sys

import dkim


def main():
    message = open(sys.argv[1], "rb").read()
    der = open(sys.argv[2], "rb").read()
    algorithm = sys.argv[3]
    # RFC 8463: an Ed25519 record holds the bare 32-byte key, RSA the SubjectPublicKeyInfo.
    key = der[-32:] if algorithm == "ed25519" else der
    record = b"v=DKIM1; k=" + algorithm.encode() + b"; p=" + base64.b64encode(key)
    asked = []

    def dns(name, timeout=5):
        asked.append(name.decode() if isinstance(name, bytes) else name)
        return record

    log = io.StringIO()
    logger = logging.getLogger("dkim_verify")
    logger.addHandler(logging.StreamHandler(log))
    logger.setLevel(logging.DEBUG)
    ok = dkim.verify(message, logger=logger, dnsfunc=dns)
    print(("verified" if ok else "failed"), ",".join(asked))
    if not ok:
        print(log.getvalue())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
