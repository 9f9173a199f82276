"""PKCS#11 key backend: keys generated and used inside an HSM (SoftHSM2 in tests).

Called by the CA and the ceremony CLI. The only padlock package that imports python-pkcs11.

- `token`: `Token.open(module, token_label, pin_file=...)`, `generate()`, `load()`,
  `reconnect()`, `check()`.
- `signer`: `Pkcs11Signer`, the `padlock.keys.base.Signer` a token returns.
- `hsm_key`: the `cryptography` private-key subclasses whose `sign()` calls the token.
- `objects`: key templates (sensitive, non-extractable) and public-key reading.
- `library`: one loaded module per path, its lock; `pin`: reading the user PIN.
"""

from padlock.keys.pkcs11.pin import read_pin
from padlock.keys.pkcs11.signer import Pkcs11Signer
from padlock.keys.pkcs11.token import Token

__all__ = ["Pkcs11Signer", "Token", "read_pin"]
