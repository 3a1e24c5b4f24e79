"""tap-salesforce with its OAuth login host (login/test.salesforce.com, hard-coded in
``tap_salesforce/salesforce/__init__.py`` ``Salesforce.login``) sent to the Salesforce sandbox.

Every later call goes to the ``instance_url`` the token response names, which is the sandbox itself.
"""

import sys

import vendor_redirect

vendor_redirect.install_from_environment()

from tap_salesforce import main  # noqa: E402  (the redirect must be in place before the tap runs)

if __name__ == "__main__":
    sys.exit(main())
