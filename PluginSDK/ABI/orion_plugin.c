/* Layout checks for the ABI header: compiled into the host, never into plugins. */
#include "orion_plugin.h"

_Static_assert(sizeof(orion_str) == 2 * sizeof(void *), "orion_str is {ptr, len}");
_Static_assert(offsetof(orion_plugin_info, struct_size) == 0, "struct_size leads every struct");
_Static_assert(offsetof(orion_host_api, struct_size) == 0, "struct_size leads every struct");
_Static_assert(ORION_ERROR_MESSAGE_CAPACITY >= 128, "room for a useful message");
