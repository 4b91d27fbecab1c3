"""The tracker block list of `setup.blockTrackers`: hosts of common analytics, ads and recorders.

No package on PyPI ships a maintained tracker list (those that exist parse Adblock
Plus rules or download Disconnect's or EasyPrivacy's lists at run time, and agents
reach no list server), so the farm keeps this small one: the third-party hosts
that most pages load for analytics, advertising, session recording and social
tracking pixels, taken from the Disconnect and EasyPrivacy lists. A host is a
tracker when it, or a domain it belongs to, is listed. It is short on purpose:
refusing a host breaks pages that need it, so only hosts that serve nothing but
tracking are here.
"""

TRACKER_DOMAINS: frozenset[str] = frozenset(
    {
        # Analytics and tag managers.
        "google-analytics.com",
        "googletagmanager.com",
        "analytics.google.com",
        "stats.g.doubleclick.net",
        "mc.yandex.ru",
        "scorecardresearch.com",
        "quantserve.com",
        "chartbeat.com",
        "chartbeat.net",
        "mixpanel.com",
        "heapanalytics.com",
        "api.amplitude.com",
        "cdn.amplitude.com",
        "api.segment.io",
        "cdn.segment.com",
        "nr-data.net",
        "bat.bing.com",
        "analytics.tiktok.com",
        "analytics.twitter.com",
        "static.ads-twitter.com",
        "px.ads.linkedin.com",
        "snap.licdn.com",
        "connect.facebook.net",
        "ct.pinterest.com",
        "sc-static.net",
        # Advertising.
        "doubleclick.net",
        "googlesyndication.com",
        "googleadservices.com",
        "googletagservices.com",
        "adservice.google.com",
        "amazon-adsystem.com",
        "adnxs.com",
        "criteo.com",
        "criteo.net",
        "taboola.com",
        "outbrain.com",
        "rubiconproject.com",
        "pubmatic.com",
        "openx.net",
        "casalemedia.com",
        "adsrvr.org",
        "moatads.com",
        "2mdn.net",
        # Session recording and heat maps.
        "hotjar.com",
        "hotjar.io",
        "mouseflow.com",
        "fullstory.com",
        "clarity.ms",
        "crazyegg.com",
        "luckyorange.com",
        "smartlook.com",
        "inspectlet.com",
    }
)
"""Tracker hosts and domains: each matches itself and every host under it."""


def is_tracker(host: str) -> bool:
    """Whether `host` (e.g. "www.google-analytics.com") is, or is under, a listed tracker."""
    labels = host.lower().rstrip(".").split(".")
    return any(".".join(labels[start:]) in TRACKER_DOMAINS for start in range(len(labels)))
