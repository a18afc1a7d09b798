/*
 * pbconv.c: datastore records <-> protobuf messages.
 */
#include <stdlib.h>
#include <string.h>

#include "pbconv.h"

int
pb_to_selectors(Wick__Types__Selector *const *v, size_t n,
    struct selector_set *set, const char **why)
{
	size_t	i;
	int	r;

	if (n > SELECTOR_MAX_COUNT) {
		*why = "too many selectors";
		return WICK_ERR_LIMIT;
	}
	for (i = 0; i < n; i++)
		if ((r = selector_set_add(set, v[i]->type, v[i]->value,
		    why)) != 0)
			return r;
	return 0;
}

int
pb_to_entry(const Wick__Types__Entry *pb, struct ds_entry **out,
    const char **why)
{
	struct ds_entry	*e;
	size_t		 i;
	int		 r;

	*out = NULL;
	*why = NULL;
	if (pb->n_dns_names > DS_MAX_DNS_NAMES) {
		*why = "too many DNS names";
		return WICK_ERR_LIMIT;
	}
	if (pb->n_federates_with > DS_MAX_FEDERATES_WITH) {
		*why = "too many federated trust domains";
		return WICK_ERR_LIMIT;
	}
	if ((e = ds_entry_new()) == NULL)
		return WICK_ERR_ALLOC;
	if ((e->id = strdup(pb->id)) == NULL ||
	    (e->spiffe_id = strdup(pb->spiffe_id)) == NULL ||
	    (e->parent_id = strdup(pb->parent_id)) == NULL ||
	    (e->hint = strdup(pb->hint)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto fail;
	}
	e->x509_svid_ttl = pb->x509_svid_ttl;
	e->jwt_svid_ttl = pb->jwt_svid_ttl;
	e->admin = pb->admin;
	e->downstream = pb->downstream;
	e->store_svid = pb->store_svid;
	e->expires_at = pb->expires_at;
	e->revision_number = pb->revision_number;
	if ((r = pb_to_selectors(pb->selectors, pb->n_selectors,
	    &e->selectors, why)) != 0)
		goto fail;
	for (i = 0; i < pb->n_dns_names; i++)
		if ((r = ds_entry_add_dns_name(e, pb->dns_names[i])) != 0)
			goto fail;
	for (i = 0; i < pb->n_federates_with; i++)
		if ((r = ds_entry_add_federates_with(e,
		    pb->federates_with[i])) != 0)
			goto fail;
	*out = e;
	return 0;
fail:
	ds_entry_free(e);
	return r;
}

/* One allocation: the pointers, then the messages they point to. */
static int
selectors_pb(const struct selector_set *set, Wick__Types__Selector ***out)
{
	Wick__Types__Selector	**v;
	size_t			  i;

	*out = NULL;
	if (set->n == 0)
		return 0;
	if ((v = calloc(set->n, sizeof(*v) + sizeof(**v))) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < set->n; i++) {
		v[i] = (Wick__Types__Selector *)(v + set->n) + i;
		wick__types__selector__init(v[i]);
		v[i]->type = set->sel[i].type;
		v[i]->value = set->sel[i].value;
	}
	*out = v;
	return 0;
}

int
pb_from_entry(const struct ds_entry *e, Wick__Types__Entry *pb)
{
	static char	empty[] = "";
	int		r;

	wick__types__entry__init(pb);
	if ((r = selectors_pb(&e->selectors, &pb->selectors)) != 0)
		return r;
	pb->n_selectors = e->selectors.n;
	pb->id = e->id;
	pb->spiffe_id = e->spiffe_id;
	pb->parent_id = e->parent_id;
	pb->x509_svid_ttl = e->x509_svid_ttl;
	pb->jwt_svid_ttl = e->jwt_svid_ttl;
	pb->federates_with = e->federates_with;
	pb->n_federates_with = e->nfederates_with;
	pb->admin = e->admin;
	pb->downstream = e->downstream;
	pb->expires_at = e->expires_at;
	pb->dns_names = e->dns_names;
	pb->n_dns_names = e->ndns_names;
	pb->revision_number = e->revision_number;
	pb->store_svid = e->store_svid;
	pb->hint = e->hint != NULL ? e->hint : empty;
	pb->created_at = e->created_at;
	return 0;
}

void
pb_entry_clear(Wick__Types__Entry *pb)
{
	free(pb->selectors);
	pb->selectors = NULL;
	pb->n_selectors = 0;
}

int
pb_from_node(const struct ds_node *n, Wick__Types__Agent *pb)
{
	int r;

	wick__types__agent__init(pb);
	if ((r = selectors_pb(&n->selectors, &pb->selectors)) != 0)
		return r;
	pb->n_selectors = n->selectors.n;
	pb->spiffe_id = n->spiffe_id;
	pb->attestation_type = n->attestation_type;
	pb->x509_svid_serial_number = n->serial;
	pb->x509_svid_expires_at = n->expires_at;
	pb->banned = ds_node_banned(n);
	pb->can_reattest = n->can_reattest;
	return 0;
}

void
pb_agent_clear(Wick__Types__Agent *pb)
{
	free(pb->selectors);
	pb->selectors = NULL;
	pb->n_selectors = 0;
}
