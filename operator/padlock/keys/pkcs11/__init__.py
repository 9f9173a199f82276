"""PKCS#11 key backend: keys generated and used inside an HSM (SoftHSM2 in tests).

Called by the CA and the ceremony CLI. The only padlock package that imports python-pkcs11.

- `token`: `Token.open(module, token_label, pin_file=...)`, `generate()`, `load()`,
  `reconnect()`; `Pkcs11Signer`, the `padlock.keys.base.Signer` it returns.
- `hsm_key`: the `cryptography` private-key subclasses whose `sign()` calls the token.
- `objects`: key templates (sensitive, non-extractable) and public-key reading.
"""

from padlock.keys.pkcs11.token import Pkcs11Signer, Token, read_pin

__all__ = ["Pkcs11Signer", "Token", "read_pin"]
