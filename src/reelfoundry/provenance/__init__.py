"""Provenance: C2PA manifests on every output (c2pa-python), signed with the platform's credentials.

``credentials`` makes the development signing CA and its leaf, or loads configured PEM files;
``manifest`` signs an MP4 and reads a file's manifest chain back with its validation state.
"""
