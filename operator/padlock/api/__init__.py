"""Types only: CRD spec/status models, group/version/plurals, condition names.

Imported by every other layer; imports nothing of padlock outside itself (the only third-party
import is PyYAML, in `crdgen`). Modules:

- `group`: API group, version, kinds, plurals, short names.
- `certificate`, `issuer`, `revocation`: the spec/status models, `refs` and `conditions` the
  shapes they share; `fields` declares fields, `wire` encodes/decodes the camelCase form.
- `durations`: Go duration strings; `reasons`: RFC 5280 CRLReason names and codes;
  `labels`: annotation and label keys on Secrets and workloads.
- `crdgen`: writes crds/ from the models (`python -m padlock.api.crdgen --out crds/`).
"""
