"""Pure X.509: profiles, policy, CSR checks, serials, chains, OCSP/CRL builders. No I/O.

Called by the CA pipeline, the ceremony CLI and tests; signs only through a key object it is
handed (a `cryptography` private key, software or PKCS#11-backed).
"""
