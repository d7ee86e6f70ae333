"""Content and data-class policy, checked at admission. Pure: a policy and a request in, a verdict out.

Rules, each named in the 422 problem that a denial becomes:

* ``blocked-term``: the prompt or negative prompt contains a configured term (whole words, any case).
* ``protected-identity``: the prompt names a configured person or brand; allowed only with a
  ``consent_reference`` (the documented consent, kept with the job).
* ``data-class``: ``confidential`` and ``restricted`` requests run only on self-hosted models, never a
  vendor's remote API: a card lists the data classes it may take (a vendor card cannot list those two) and
  the router's data-class filter applies it (``routing.plan``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from reelfoundry.config import Settings
from reelfoundry.errors import PolicyDenied
from reelfoundry.schema import VideoRequest


@dataclass(frozen=True)
class ContentPolicy:
    """The configured content rules."""

    blocked_terms: tuple[str, ...] = ()
    protected_identities: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ContentPolicy:
        """The policy the settings configure."""
        return cls(tuple(settings.policy_blocked_terms), tuple(settings.policy_protected_identities))

    def check(self, request: VideoRequest) -> None:
        """Raise PolicyDenied naming the first rule the request breaks."""
        texts = [request.prompt, request.negative_prompt or ""]
        for term in self.blocked_terms:
            if any(_phrase(term).search(t) for t in texts):
                raise PolicyDenied("blocked-term", f"the prompt contains a blocked term: {term!r}")
        if request.consent_reference is None:
            for name in self.protected_identities:
                if _phrase(name).search(request.prompt):
                    raise PolicyDenied(
                        "protected-identity",
                        f"the prompt names {name!r}, a protected identity: give a consent_reference",
                    )


@functools.lru_cache(maxsize=1024)
def _phrase(phrase: str) -> re.Pattern[str]:
    """Whole words of ``phrase``, any case, any whitespace between them."""
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
