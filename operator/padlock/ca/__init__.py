"""The CA: issuance pipeline, revocation, OCSP pre-signing, CRL publication, lint gate.

`padlock.ca.client` is the only module the operator may import (the JSON contract); the
rest holds HSM sessions and the ledger and runs only in the CA process.
"""
