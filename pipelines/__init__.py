"""dlt sources that load Salesforce, the ERP and the payments platform into ``raw_<system>`` schemas."""
