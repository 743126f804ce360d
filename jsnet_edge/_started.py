"""When the package was first imported (`jsnet_edge/__init__` imports this first).

Start-up times count from here where the process itself is older than this program: a
shell that exec'd us (`bash -c '... && jsnet-edge video ...'`) hands over its own start
time (`jsnet_edge.devices.process_age`).
"""

import time

IMPORTED_AT = time.perf_counter()
