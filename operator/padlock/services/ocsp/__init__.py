"""The revocation responder (`padlock ocsp serve`): RFC 6960 OCSP over HTTP and CRL shards.

Modules by role: `store` (memory loaded from the ledger, kept current by polling), `responder`
(what to answer to one DER request), `http` (the HTTP/1.1 front end and URL table), `server`
(ledger, key, workers, lifecycle). The responder reads the ledger only; the CA pre-signs.
"""
