/* flush: every kelp-proxy table, the conntrack entries of the service addresses, the state. */
#include <stdlib.h>

#include "cleanup.h"
#include "proxy.h"
#include "rules.h"

int kp_state_service_addrs(const char *dir, struct kp_ct_target **ret, size_t *ret_n, struct kelp_err *err);
int kp_state_remove(const char *dir, struct kelp_err *err);

int kp_flush(struct nft *nft, const char *state_dir, struct kelp_err *err)
{
	struct kp_ct_target *addrs = NULL;
	size_t n = 0;
	/* an unreadable state only loses the conntrack clean-up; the tables go anyway */
	struct kelp_err serr = {0};
	if (kp_state_service_addrs(state_dir, &addrs, &n, &serr) < 0)
		n = 0;
	struct nft_batch *b = nft_batch_begin(nft);
	kp_rules_delete_tables(b);
	int r = nft_batch_commit(b, err);
	nft_batch_free(b);
	if (r < 0) {
		free(addrs);
		return -1;
	}
	r = kp_conntrack_delete(NULL, 0, addrs, n, true, err);
	free(addrs);
	if (r < 0)
		return -1;
	return kp_state_remove(state_dir, err);
}
