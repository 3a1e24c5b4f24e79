"""tap-stripe with ``api.stripe.com`` sent to the payments sandbox.

Setting the SDK's ``stripe.api_base`` would be the gentler switch, but the tap cannot run with it:
``tap_stripe.apply_request_timer_to_client`` matches every request URL against
``http[s]?://api\\.stripe\\.com/v1/(\\w+)`` and fails on any other host. So the SDK keeps talking to
``api.stripe.com`` and the redirect happens one layer below, in ``requests``.
"""

import sys

import vendor_redirect

vendor_redirect.install_from_environment()

from tap_stripe import main  # noqa: E402  (the redirect must be in place before the tap runs)

if __name__ == "__main__":
    sys.exit(main())
