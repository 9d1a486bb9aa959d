// SPDX-License-Identifier: BSD-2-Clause
/*
 * Placement with hwloc: the device's local cpuset comes from
 * hwloc_ibv_get_device_cpuset() (sysfs local_cpus of the PCI device; for
 * a software device such as rxe it is the whole machine). The process is
 * bound there, memory to the same nodes; --cpu picks one core, --numa one
 * node instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

#ifdef HAVE_HWLOC
#include <hwloc.h>
#include <hwloc/openfabrics-verbs.h>

static int choose_set(hwloc_topology_t t, struct ibv_device *dev, int cpu, int numa,
		      hwloc_bitmap_t set, const char **why)
{
	hwloc_obj_t o;

	if (cpu >= 0) {
		o = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned int)cpu);
		*why = "--cpu";
	} else if (numa >= 0) {
		o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned int)numa);
		*why = "--numa";
	} else {
		*why = "the device's local CPUs";
		return hwloc_ibv_get_device_cpuset(t, dev, set) ? -EIO : 0;
	}
	if (!o)
		return -EINVAL;
	hwloc_bitmap_copy(set, o->cpuset);
	return 0;
}

static void describe(hwloc_topology_t t, hwloc_bitmap_t set, struct ibv_device *dev,
		     const char *why, FILE *f)
{
	hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
	char *cpus = NULL, *mem = NULL;

	hwloc_cpuset_to_nodeset(t, set, nodes);
	hwloc_bitmap_list_asprintf(&cpus, set);
	hwloc_bitmap_list_asprintf(&mem, nodes);
	fprintf(f, "# placement: %s; bound to CPUs %s, memory on NUMA node(s) %s (%s); "
		"machine: %d cores, %d NUMA nodes\n", ibv_get_device_name(dev),
		cpus ? cpus : "?", mem ? mem : "?", why,
		hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE),
		hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE));
	free(cpus);
	free(mem);
	hwloc_bitmap_free(nodes);
}

int placement_apply(struct ibv_device *dev, int cpu, int numa, FILE *f)
{
	hwloc_topology_t t;
	hwloc_bitmap_t set;
	const char *why = "";
	int ret;

	if (hwloc_topology_init(&t) || hwloc_topology_load(t))
		return -EIO;
	set = hwloc_bitmap_alloc();
	ret = choose_set(t, dev, cpu, numa, set, &why);
	if (ret)
		fprintf(stderr, "mrcache-bench: no %s %d on this machine\n",
			cpu >= 0 ? "core" : "NUMA node", cpu >= 0 ? cpu : numa);
	if (!ret && hwloc_set_cpubind(t, set, HWLOC_CPUBIND_PROCESS))
		fprintf(stderr, "mrcache-bench: hwloc_set_cpubind: %s\n", strerror(errno));
	if (!ret && hwloc_set_membind(t, set, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_PROCESS) &&
	    hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) > 1)
		fprintf(stderr, "mrcache-bench: hwloc_set_membind: %s\n", strerror(errno));
	if (!ret)
		describe(t, set, dev, why, f);
	hwloc_bitmap_free(set);
	hwloc_topology_destroy(t);
	return ret;
}
#else
int placement_apply(struct ibv_device *dev, int cpu, int numa, FILE *f)
{
	(void)dev;
	fprintf(f, "# placement: none (built without hwloc)\n");
	return cpu >= 0 || numa >= 0 ? -ENOTSUP : 0;
}
#endif
