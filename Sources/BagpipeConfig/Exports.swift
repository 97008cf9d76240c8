// bgp.conf is read with the shared INI reader; its users see `INIFile` and `ConfigurationError`
// through this module as before.
@_exported import INIConfig
