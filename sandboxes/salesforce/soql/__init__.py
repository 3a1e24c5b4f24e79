"""SOQL: parsing the query language and compiling it to SQL over the store."""

from sandboxes.salesforce.soql.compiler import CompiledQuery, compile_soql

__all__ = ["CompiledQuery", "compile_soql"]
