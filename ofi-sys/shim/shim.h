/* Out-of-line wrappers for libfabric's `static inline` calls (bindgen cannot link those). */
#ifndef CART_OFI_SHIM_H
#define CART_OFI_SHIM_H
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>

struct fi_info *cart_fi_allocinfo(void);
int cart_fi_domain(struct fid_fabric *fabric, struct fi_info *info, struct fid_domain **domain, void *context);
int cart_fi_endpoint(struct fid_domain *domain, struct fi_info *info, struct fid_ep **ep, void *context);
int cart_fi_cq_open(struct fid_domain *domain, struct fi_cq_attr *attr, struct fid_cq **cq, void *context);
int cart_fi_av_open(struct fid_domain *domain, struct fi_av_attr *attr, struct fid_av **av, void *context);
int cart_fi_ep_bind(struct fid_ep *ep, struct fid *bfid, uint64_t flags);
int cart_fi_enable(struct fid_ep *ep);
int cart_fi_close(struct fid *fid);
int cart_fi_control(struct fid *fid, int command, void *arg);
int cart_fi_av_insert(struct fid_av *av, const void *addr, size_t count, fi_addr_t *fi_addr, uint64_t flags, void *context);
int cart_fi_av_remove(struct fid_av *av, fi_addr_t *fi_addr, size_t count, uint64_t flags);
int cart_fi_getname(fid_t fid, void *addr, size_t *addrlen);
ssize_t cart_fi_send(struct fid_ep *ep, const void *buf, size_t len, void *desc, fi_addr_t dest_addr, void *context);
ssize_t cart_fi_inject(struct fid_ep *ep, const void *buf, size_t len, fi_addr_t dest_addr);
ssize_t cart_fi_recv(struct fid_ep *ep, void *buf, size_t len, void *desc, fi_addr_t src_addr, void *context);
ssize_t cart_fi_read(struct fid_ep *ep, void *buf, size_t len, void *desc, fi_addr_t src_addr, uint64_t addr, uint64_t key, void *context);
ssize_t cart_fi_write(struct fid_ep *ep, const void *buf, size_t len, void *desc, fi_addr_t dest_addr, uint64_t addr, uint64_t key, void *context);
ssize_t cart_fi_cancel(fid_t fid, void *context);
ssize_t cart_fi_cq_read(struct fid_cq *cq, void *buf, size_t count);
ssize_t cart_fi_cq_readerr(struct fid_cq *cq, struct fi_cq_err_entry *buf, uint64_t flags);
ssize_t cart_fi_cq_sread(struct fid_cq *cq, void *buf, size_t count, const void *cond, int timeout);
const char *cart_fi_cq_strerror(struct fid_cq *cq, int prov_errno, const void *err_data, char *buf, size_t len);
int cart_fi_mr_reg(struct fid_domain *domain, const void *buf, size_t len, uint64_t access, uint64_t offset, uint64_t requested_key, uint64_t flags, struct fid_mr **mr, void *context);
void *cart_fi_mr_desc(struct fid_mr *mr);
uint64_t cart_fi_mr_key(struct fid_mr *mr);
int cart_fi_mr_bind(struct fid_mr *mr, struct fid *bfid, uint64_t flags);
int cart_fi_mr_enable(struct fid_mr *mr);
int cart_fi_trywait(struct fid_fabric *fabric, struct fid **fids, int count);
#endif
