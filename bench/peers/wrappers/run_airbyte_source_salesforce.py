"""Airbyte's source-salesforce with its OAuth login host (hard-coded in ``source_salesforce/api.py``
``Salesforce._perform_login``) sent to the Salesforce sandbox.

Every later call goes to the ``instance_url`` the token response names, which is the sandbox itself.
"""

import sys

import vendor_redirect

vendor_redirect.install_from_environment()

from source_salesforce.run import run  # noqa: E402  (the redirect must be in place before the source runs)

if __name__ == "__main__":
    sys.exit(run())
