/*
 * admin_audit.h: the admin API's audit and backup calls (admin_audit.c),
 * rows of admin_api.c's method table.
 */
#ifndef WICK_ADMIN_AUDIT_H
#define WICK_ADMIN_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

struct server;

/* Root, the server's own uid, or one of admin_uids (admin_api.c). */
int	 admin_peer_allowed(struct server *, const struct rpc_peer *);

/* on_start and on_done of the calls below: per-call state. */
void	 admin_job_start(struct rpc_call *, void *srv);
void	 admin_job_done(struct rpc_call *, enum rpc_end);

/* /wick.admin.Audit/ListAuditEvents: paged, in seq order. */
void	 admin_m_list_audit(struct rpc_call *, const uint8_t *, size_t);
/* /wick.admin.Audit/VerifyAudit: the chain walked in slices. */
void	 admin_m_verify_audit(struct rpc_call *, const uint8_t *, size_t);
/* /wick.admin.Server/Backup: the copy made on the thread pool. */
void	 admin_m_backup(struct rpc_call *, const uint8_t *, size_t);

#endif /* WICK_ADMIN_AUDIT_H */
