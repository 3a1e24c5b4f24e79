"""Airbyte's source-stripe with ``api.stripe.com`` sent to the payments sandbox.

The connector is a low-code manifest whose ``url_base`` (``https://api.stripe.com/v1``) is fixed in
``source_stripe/manifest.yaml`` and not exposed as a setting; the redirect leaves the manifest untouched.
"""

import sys

import vendor_redirect

vendor_redirect.install_from_environment()

from source_stripe.run import run  # noqa: E402  (the redirect must be in place before the source runs)

if __name__ == "__main__":
    sys.exit(run())
