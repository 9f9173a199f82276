"""Key backends behind one `Signer` protocol: software keys and PKCS#11 (HSM).

Called by the CA and the ceremony CLI. Only `padlock.keys.pkcs11` imports python-pkcs11.
"""
