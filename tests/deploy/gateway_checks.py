"""Checks of the gateway: it finds the server Service and its port names, has its own
ServiceAccount, and its Role grants exactly the API access balancer/k8s_source.cc uses.
"""
import binaries
from manifests import deployments_selected, ident


def check_role_binding(m, binding, problems):
    ns = binding["metadata"].get("namespace") or ""
    ref = binding.get("roleRef") or {}
    if ref.get("kind") == "Role" and m.get("Role", ns, ref.get("name")) is None:
        problems.append("%s: roleRef names Role %r, which does not exist in namespace %s"
                        % (ident(binding), ref.get("name"), ns))
    if ref.get("kind") == "ClusterRole" and m.get("ClusterRole", "", ref.get("name")) is None:
        problems.append("%s: roleRef names ClusterRole %r, which is not in the manifests"
                        % (ident(binding), ref.get("name")))
    for s in binding.get("subjects") or []:
        if s.get("kind") == "ServiceAccount" and \
                m.get("ServiceAccount", s.get("namespace") or "", s.get("name")) is None:
            problems.append("%s: subject ServiceAccount %s/%s does not exist"
                            % (ident(binding), s.get("namespace"), s.get("name")))


def check_gateway(m, c, containers, context, problems):
    """The gateway finds its replicas, and may read what it needs to, no more."""
    ns = c.deployment["metadata"].get("namespace") or ""
    pod = c.deployment["spec"]["template"]["spec"]
    service_flag = c.flag("k8s_service") or ""
    if not service_flag:
        problems.append("%s: no --k8s_service" % c.where)
        return
    service_ns, _, service_name = service_flag.rpartition("/")
    service_ns = service_ns or ns
    if service_ns != ns:
        problems.append("%s: --k8s_service=%s is in namespace %s, outside the Role's namespace %s"
                        % (c.where, service_flag, service_ns, ns))
    service = m.get("Service", service_ns, service_name)
    if service is None:
        problems.append("%s: --k8s_service=%s names no Service" % (c.where, service_flag))
    else:
        ports = {p.get("name"): p for p in service["spec"].get("ports") or []}
        selected = deployments_selected(m, service_ns, service["spec"].get("selector") or {})
        servers = [x for d in selected for x in containers.get(d["metadata"]["name"], [])
                   if x.binary_name == "inferd-server"]
        for flag, server_flag in (("k8s_grpc_port_name", "port"),
                                  ("k8s_http_port_name", "rest_api_port")):
            name = c.flag(flag)
            if name not in ports:
                problems.append("%s: --%s=%s is not a port name of Service %s (it has %s)"
                                % (c.where, flag, name, service_name, ", ".join(map(str, ports))))
                continue
            target = ports[name].get("targetPort", ports[name].get("port"))
            for s in servers:
                if str(s.resolve_port(target)) != str(s.flag(server_flag)):
                    problems.append("%s: Service %s port %s leads to container port %s, but "
                                    "inferd-server listens on --%s=%s"
                                    % (c.where, service_name, name, s.resolve_port(target),
                                       server_flag, s.flag(server_flag)))
    account = pod.get("serviceAccountName") or "default"
    if account == "default":
        problems.append("%s: runs as the namespace's default ServiceAccount; give it its own"
                        % c.where)
    sa = m.get("ServiceAccount", ns, account)
    if sa is None:
        problems.append("%s: serviceAccountName %r does not exist" % (c.where, account))
    if pod.get("automountServiceAccountToken") is False or \
            (sa is not None and sa.get("automountServiceAccountToken") is False and
             pod.get("automountServiceAccountToken") is not True):
        problems.append("%s: the service account token is not mounted, but the gateway needs "
                        "it to watch EndpointSlices" % c.where)
    granted, sources = granted_access(m, ns, account)
    if context.src:
        needed, source_problems = binaries.gateway_api_access(context.src)
        problems += source_problems
    else:
        needed = {("discovery.k8s.io", "endpointslices", v) for v in ("list", "watch")}
    if not sources:
        problems.append("%s: no RoleBinding gives ServiceAccount %s a Role" % (c.where, account))
    if needed - granted:
        problems.append("%s: the Role(s) bound to ServiceAccount %s (%s) do not grant %s, which "
                        "the gateway needs (%s)" % (c.where, account, ", ".join(sources) or "none",
                                                    fmt(needed - granted), binaries.K8S_SOURCE))
    if granted - needed:
        problems.append("%s: the Role(s) bound to ServiceAccount %s (%s) grant %s, which the "
                        "gateway never uses (%s)" % (c.where, account, ", ".join(sources),
                                                     fmt(granted - needed), binaries.K8S_SOURCE))
    service = None
    for s in m.of("Service"):
        if c.deployment in deployments_selected(m, ns, s["spec"].get("selector") or {}):
            service = s
    if service is None:
        problems.append("%s: no Service selects the gateway's pods" % c.where)
        return
    spec = service["spec"]
    if spec.get("type") != "LoadBalancer":
        problems.append("%s: the gateway's Service %s has type %s, not LoadBalancer"
                        % (c.where, service["metadata"]["name"], spec.get("type", "ClusterIP")))
    if spec.get("externalTrafficPolicy") != "Local":
        problems.append("%s: the gateway's Service %s should have externalTrafficPolicy Local"
                        % (c.where, service["metadata"]["name"]))
    for port, flag in ((8500, "port"), (8501, "rest_api_port")):
        entry = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if entry is None:
            problems.append("%s: the gateway's Service %s has no port %d"
                            % (c.where, service["metadata"]["name"], port))
        elif str(c.resolve_port(entry.get("targetPort", port))) != str(c.flag(flag)):
            problems.append("%s: the gateway's Service port %d does not lead to --%s=%s"
                            % (c.where, port, flag, c.flag(flag)))


def fmt(access):
    """(apiGroup, resource, verb) triples as 'verb resource.group, ...'."""
    return ", ".join("%s %s.%s" % (v, r, g or "core") for g, r, v in sorted(access))


def granted_access(m, ns, account):
    """(set of (apiGroup, resource, verb), names of the Roles) bound to a ServiceAccount."""
    granted, sources = set(), []
    for binding in m.of("RoleBinding"):
        if (binding["metadata"].get("namespace") or "") != ns:
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account and
                   (s.get("namespace") or "") == ns for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        role = m.get(ref.get("kind"), ns if ref.get("kind") == "Role" else "", ref.get("name"))
        if role is None:
            continue
        sources.append("%s %s" % (ref.get("kind"), ref.get("name")))
        for rule in role.get("rules") or []:
            if rule.get("resourceNames"):
                granted.add(("resourceNames", ",".join(rule["resourceNames"]),
                             "(list and watch cannot be limited by name)"))
            for g in rule.get("apiGroups") or []:
                for r in rule.get("resources") or []:
                    for v in rule.get("verbs") or []:
                        granted.add((g, r, v))
    return granted, sources
