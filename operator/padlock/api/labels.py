"""Annotation and label keys padlock reads and writes on Secrets and workloads.

Called by `padlock.kube` (writing Secrets, patching pod templates), the controllers (finding
what to reload) and the tests. One definition, so the operator and its users spell them alike.
"""

from __future__ import annotations

from padlock.api import group

PREFIX = group.GROUP

# --- On workloads (Deployments, StatefulSets, DaemonSets), set by users -----------------------

# "true": roll this workload when any padlock Secret it mounts gets a new certificate.
RELOAD = f"{PREFIX}/reload"
# "a,b": roll this workload when one of these Secrets (by name, same namespace) changes.
RELOAD_SECRETS = f"{PREFIX}/reload-secrets"
# Set by padlock on the pod template: hash of the new tls.crt. A new value rolls the pods.
CERT_HASH = f"{PREFIX}/cert-hash"

# --- On Secrets padlock writes ----------------------------------------------------------------

# Label: who manages the Secret (the kopf watch uses it as a server-side label selector).
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "padlock"
# Label: the Certificate (same namespace) the Secret belongs to.
CERTIFICATE_NAME = f"{PREFIX}/certificate-name"
# Annotation: the Certificate revision whose certificate the Secret holds.
REVISION = f"{PREFIX}/revision"
# Annotation: hash of the Certificate spec fields that shape the issued certificate. Checked
# before calling the CA, so a handler re-run after a crash does not issue twice.
SPEC_HASH = f"{PREFIX}/spec-hash"
# Annotations describing the issued certificate (like cert-manager's cert-manager.io/*).
ISSUER_NAME = f"{PREFIX}/issuer-name"
ISSUER_KIND = f"{PREFIX}/issuer-kind"
SERIAL_NUMBER = f"{PREFIX}/serial-number"

# Server-side label selector for Secrets padlock manages.
SECRET_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
