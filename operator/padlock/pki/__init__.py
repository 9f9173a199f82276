"""Pure X.509: profiles, policy, CSR checks, serials, chains, OCSP/CRL builders. No I/O.

Called by the CA pipeline, the ceremony CLI and tests; signs only through a key object it is
handed (a `cryptography` private key, software or PKCS#11-backed).

- `algorithms`: the key types padlock accepts.
- `serials`: 20-octet positive random serial numbers.
- `profiles`: root / intermediate / tls-server / tls-client / svid / ocsp-responder, and
  `build_certificate`, the one place a certificate is built and signed.
- `errors`, `names`, `csr`, `policy`: what may be signed, refused with coded `PolicyError`s.
- `chains`: order a bag of certificates and verify a path.
- `pem`: load, fingerprint and `describe_certificate` for `padlock inspect`.
- `lint`: pkilint with padlock's re-checked private-PKI waivers (the CA's lint gate).
"""
