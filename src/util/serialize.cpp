#include "hpsweep/util/serialize.hpp"
