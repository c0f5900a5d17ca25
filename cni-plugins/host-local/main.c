#include "cni.h"

int main(int argc, char **argv)
{
	return cni_main(argc, argv, &kelp_host_local_plugin);
}
