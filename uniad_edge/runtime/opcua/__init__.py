"""OPC UA server for PLCs and SCADA: the address space, its settings and the server thread.

`config` and `values` are plain Python; `server` imports asyncua (the `[opcua]` extra) and is
imported only when a station asks for OPC UA.
"""
