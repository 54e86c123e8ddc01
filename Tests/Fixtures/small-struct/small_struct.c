#define FIXTURE_ID "fixture-small-struct"
#define FIXTURE_INFO_SIZE 16
#include "../fixture_plugin.h"
