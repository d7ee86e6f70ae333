"""An asset's XMP sidecar: its DAM metadata and IPTC digital source type as a small RDF/XML document.

Every value goes through ElementTree, which escapes markup characters; the API refuses control characters in
metadata, so the document is always well-formed XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "rf": "https://reelfoundry.dev/ns/dam/1.0/",
}
SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: Model output; template renders are algorithmic without training (as their C2PA manifest says).
TRAINED = SOURCE_TYPES + "trainedAlgorithmicMedia"
ALGORITHMIC = SOURCE_TYPES + "algorithmicMedia"
CAPTURE = SOURCE_TYPES + "digitalCapture"
MEDIA_TYPE = "application/rdf+xml"

for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True)
class Sidecar:
    """What the sidecar says about one asset."""

    asset_id: str
    media_type: str
    sha256: str
    created_at: datetime
    digital_source_type: str
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    brand: str | None = None
    licence: str | None = None
    consent_ref: str | None = None
    rights_expires_at: datetime | None = None
    usage_restrictions: tuple[str, ...] = ()
    model: str | None = None


def source_type(origin: str, model: str | None) -> str:
    """IPTC DigitalSourceType: an upload is a capture; model output trained algorithmic; a template render
    algorithmic."""
    if origin == "uploaded":
        return CAPTURE
    return ALGORITHMIC if model == "template" else TRAINED


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _text(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, _q(name)).text = value


def _container(parent: ET.Element, name: str, kind: str, values: list[str], lang: bool = False) -> None:
    holder = ET.SubElement(ET.SubElement(parent, _q(name)), _q(f"rdf:{kind}"))
    for value in values:
        li = ET.SubElement(holder, _q("rdf:li"))
        if lang:
            li.set("{http://www.w3.org/XML/1998/namespace}lang", "x-default")
        li.text = value


def render(sidecar: Sidecar) -> bytes:
    """The XMP packet (UTF-8 RDF/XML) for ``sidecar``."""
    meta = ET.Element(_q("x:xmpmeta"))
    rdf = ET.SubElement(meta, _q("rdf:RDF"))
    desc = ET.SubElement(rdf, _q("rdf:Description"), {_q("rdf:about"): ""})
    _text(desc, "dc:format", sidecar.media_type)
    _text(desc, "dc:identifier", sidecar.asset_id)
    _text(desc, "xmp:CreateDate", sidecar.created_at.isoformat())
    _text(desc, "Iptc4xmpExt:DigitalSourceType", sidecar.digital_source_type)
    _text(desc, "rf:sha256", sidecar.sha256)
    if sidecar.title:
        _container(desc, "dc:title", "Alt", [sidecar.title], lang=True)
    if sidecar.description:
        _container(desc, "dc:description", "Alt", [sidecar.description], lang=True)
    if sidecar.tags:
        _container(desc, "dc:subject", "Bag", list(sidecar.tags))
    if sidecar.licence:
        _container(desc, "xmpRights:UsageTerms", "Alt", [sidecar.licence], lang=True)
    if sidecar.rights_expires_at is not None:
        _text(desc, "plus:LicenseEndDate", sidecar.rights_expires_at.isoformat())
    if sidecar.brand:
        _text(desc, "rf:brand", sidecar.brand)
    if sidecar.consent_ref:
        _text(desc, "rf:consentReference", sidecar.consent_ref)
    if sidecar.usage_restrictions:
        _container(desc, "rf:usageRestrictions", "Bag", list(sidecar.usage_restrictions))
    if sidecar.model:
        _text(desc, "rf:model", sidecar.model)
    body = ET.tostring(meta, encoding="unicode")
    packet = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + '\n<?xpacket end="r"?>\n'
    return packet.encode()
