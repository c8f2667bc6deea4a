"""What is inside an image, and how it was made: an SBOM and a provenance statement for
every platform image matrix publishes.

* ``sbom``: a CycloneDX 1.6 JSON document listing the Debian packages of the image (its
  ``/var/lib/dpkg/status``) and every Python package of the cell's lock, with versions
  and the lock's hashes.
* ``provenance``: an in-toto Statement v1 with an SLSA provenance v1 predicate: the
  matrix commit, Prefect's commit, the lock's digest, the base image digest and the
  build command.
* ``referrers``: both documents attached to the platform image as OCI 1.1 artifacts
  (``subject`` = the image), found through the referrers API where the registry has
  one, else through the fallback tag ``sha256-<hex>`` the OCI distribution spec
  defines for registries without it (Debian's distribution 2.8, for one).

buildx writes its own (``--attest type=sbom``, ``--attest type=provenance,mode=max``)
as attestation manifests inside the index; verify reads either kind.
"""
