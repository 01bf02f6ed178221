// One valid manifest per supported kind and version, using as many modelled fields as is sensible.
// Tests parse them, round-trip them and check them against the generated CRD schemas.

export const EXAMPLES: Readonly<Record<string, string>> = {
  'v1/Pod': `
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  labels: { app: web, app.kubernetes.io/part-of: shop }
spec:
  nodeName: worker-1
  containers:
    - name: web
      image: nginx:1.27
      ports:
        - { name: http, containerPort: 8080 }
        - { containerPort: 9090, protocol: UDP, hostPort: 19090 }
      readinessProbe: { httpGet: { path: /healthz, port: http } }
      resources: { limits: { cpu: 500m } }
  volumes:
    - name: cache
      emptyDir: {}
status:
  phase: Running
  podIP: 10.0.1.7
  podIPs: [{ ip: 10.0.1.7 }, { ip: "fd00::7" }]
  hostIP: 192.168.1.11
`,
  'v1/Namespace': `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: { team: payments }
`,
  'v1/Node': `
apiVersion: v1
kind: Node
metadata:
  name: worker-1
  labels: { kubernetes.io/hostname: worker-1, topology.kubernetes.io/zone: a }
spec:
  podCIDR: 10.0.1.0/24
  podCIDRs: [10.0.1.0/24, "fd00:1::/64"]
  taints:
    - { key: node.cilium.io/agent-not-ready, effect: NoSchedule }
status:
  addresses:
    - { type: InternalIP, address: 192.168.1.11 }
    - { type: Hostname, address: worker-1 }
`,
  'v1/Service': `
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations:
    lbipam.cilium.io/ips: "10.0.6.20"
    lbipam.cilium.io/sharing-key: shop
spec:
  type: LoadBalancer
  selector: { app: web }
  ports:
    - { name: http, port: 80, targetPort: http }
    - { name: dns, port: 53, protocol: UDP, targetPort: 5353 }
  externalTrafficPolicy: Local
  loadBalancerClass: io.cilium/l2-announcer
  loadBalancerSourceRanges: [192.168.0.0/16]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
status:
  loadBalancer:
    ingress: [{ ip: 10.0.6.20, ipMode: VIP }]
`,
  'discovery.k8s.io/v1/EndpointSlice': `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
endpoints:
  - addresses: [10.0.1.7]
    conditions: { ready: true, serving: true, terminating: false }
    nodeName: worker-1
    zone: a
    targetRef: { kind: Pod, namespace: shop, name: web-0 }
ports:
  - { name: http, port: 8080, protocol: TCP }
`,
  'networking.k8s.io/v1/NetworkPolicy': `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-access
  namespace: shop
spec:
  podSelector:
    matchExpressions:
      - { key: app, operator: In, values: [db, cache] }
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector: { matchLabels: { app: web } }
          namespaceSelector: { matchLabels: { team: payments } }
        - ipBlock: { cidr: 10.0.0.0/8, except: [10.96.0.0/12] }
      ports:
        - { port: 5432 }
        - { port: 30000, endPort: 32767, protocol: TCP }
  egress:
    - to: [{ namespaceSelector: {} }]
      ports: [{ port: dns, protocol: UDP }]
`,
  'cilium.io/v2/CiliumNetworkPolicy': `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rich
  namespace: shop
spec:
  description: every rule type in one policy
  endpointSelector:
    matchLabels: { app: web, "k8s:io.kubernetes.pod.namespace": shop }
    matchExpressions:
      - { key: "any:tier", operator: NotIn, values: [legacy] }
  enableDefaultDeny: { ingress: true, egress: false }
  labels: [{ key: owner, value: payments, source: k8s }]
  ingress:
    - fromEndpoints:
        - matchLabels: { "reserved:host": "" }
      toPorts:
        - ports: [{ port: "8080", protocol: TCP }, { port: "9000", endPort: 9100, protocol: TCP }]
          rules:
            http:
              - { method: GET, path: "/api/.*", headerMatches: [{ name: X-Token, mismatch: LOG }] }
    - fromCIDRSet:
        - { cidr: 10.0.0.0/8, except: [10.96.0.0/12] }
    - fromEntities: [cluster, remote-node]
      icmps:
        - fields: [{ type: 8 }, { family: IPv6, type: EchoRequest }]
    - fromNodes:
        - matchLabels: { node-role.kubernetes.io/control-plane: "" }
      authentication: { mode: required }
  ingressDeny:
    - fromCIDR: [192.0.2.0/24]
      toPorts: [{ ports: [{ port: "22", protocol: TCP }] }]
  egress:
    - toFQDNs: [{ matchName: api.example.com }, { matchPattern: "*.example.org" }]
      toPorts: [{ ports: [{ port: "443" }], serverNames: [api.example.com] }]
    - toEndpoints:
        - matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns }
      toPorts:
        - ports: [{ port: "53", protocol: ANY }]
          rules: { dns: [{ matchPattern: "*" }] }
    - toServices:
        - k8sService: { serviceName: db, namespace: shop }
        - k8sServiceSelector: { selector: { matchLabels: { tier: db } }, namespace: shop }
    - toEntities: [world]
      toPorts:
        - ports: [{ port: "9092", protocol: TCP }]
          rules: { kafka: [{ role: produce, topic: orders }] }
  egressDeny:
    - toCIDR: ["2001:db8::/32"]
`,
  'cilium.io/v2/CiliumClusterwideNetworkPolicy': `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: host-firewall
specs:
  - description: allow ssh to nodes from the admin network only
    nodeSelector:
      matchLabels: { node-access: ssh }
    ingress:
      - fromCIDR: [192.168.10.0/24]
        toPorts: [{ ports: [{ port: "22", protocol: TCP }] }]
  - endpointSelector: {}
    egress:
      - toEntities: [kube-apiserver]
`,
  'cilium.io/v2/CiliumLoadBalancerIPPool': `
apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata:
  name: mixed
spec:
  allowFirstLastIPs: "No"
  blocks:
    - cidr: 10.0.10.0/24
    - cidr: "2001:db8:10::/64"
    - start: 20.0.20.100
      stop: 20.0.20.200
    - start: 20.0.30.1
  serviceSelector:
    matchExpressions:
      - { key: io.kubernetes.service.namespace, operator: In, values: [shop, media] }
status:
  conditions:
    - type: cilium.io/IPsAvailable
      status: Unknown
      lastTransitionTime: "2025-01-01T00:00:00Z"
      reason: noreason
      message: "254"
`,
  'cilium.io/v2alpha1/CiliumLoadBalancerIPPool': `
apiVersion: cilium.io/v2alpha1
kind: CiliumLoadBalancerIPPool
metadata:
  name: legacy
spec:
  blocks: [{ cidr: 10.0.7.0/24 }]
  disabled: true
`,
  'cilium.io/v2alpha1/CiliumL2AnnouncementPolicy': `
apiVersion: cilium.io/v2alpha1
kind: CiliumL2AnnouncementPolicy
metadata:
  name: l2
spec:
  serviceSelector: { matchLabels: { announce: l2 } }
  nodeSelector:
    matchExpressions:
      - { key: node-role.kubernetes.io/control-plane, operator: DoesNotExist }
  interfaces: ["^eth[0-9]+", "^bond0$"]
  externalIPs: true
  loadBalancerIPs: true
`,
  'cilium.io/v2/CiliumBGPClusterConfig': `
apiVersion: cilium.io/v2
kind: CiliumBGPClusterConfig
metadata:
  name: tor
spec:
  nodeSelector: { matchLabels: { rack: rack0 } }
  bgpInstances:
    - name: instance-65000
      localASN: 65000
      peers:
        - name: peer-65000-tor1
          peerASN: 65000
          peerAddress: "fd00:10::1"
          peerConfigRef: { name: cilium-peer }
        - name: peer-65000-tor2
          peerASN: 4200000000
          peerAddress: 10.0.0.2
`,
  'cilium.io/v2alpha1/CiliumBGPClusterConfig': `
apiVersion: cilium.io/v2alpha1
kind: CiliumBGPClusterConfig
metadata:
  name: tor-old
spec:
  bgpInstances:
    - name: instance-65000
      localASN: 65000
      peers:
        - name: tor1
          peerAddress: 10.0.0.1
          peerConfigRef: { name: cilium-peer }
`,
  'cilium.io/v2/CiliumBGPPeerConfig': `
apiVersion: cilium.io/v2
kind: CiliumBGPPeerConfig
metadata:
  name: cilium-peer
spec:
  timers: { holdTimeSeconds: 9, keepAliveTimeSeconds: 3 }
  authSecretRef: bgp-auth-secret
  gracefulRestart: { enabled: true, restartTimeSeconds: 15 }
  families:
    - afi: ipv4
      safi: unicast
      advertisements: { matchLabels: { advertise: bgp } }
`,
  'cilium.io/v2alpha1/CiliumBGPPeerConfig': `
apiVersion: cilium.io/v2alpha1
kind: CiliumBGPPeerConfig
metadata:
  name: cilium-peer-old
spec:
  transport: { peerPort: 1179 }
`,
  'cilium.io/v2/CiliumBGPAdvertisement': `
apiVersion: cilium.io/v2
kind: CiliumBGPAdvertisement
metadata:
  name: bgp-advertisements
  labels: { advertise: bgp }
spec:
  advertisements:
    - advertisementType: PodCIDR
      attributes:
        communities:
          standard: ["65000:99", "4259840100"]
          wellKnown: [no-export]
          large: ["65000:1:2"]
        localPreference: 99
    - advertisementType: Service
      service: { addresses: [LoadBalancerIP, ClusterIP] }
      selector: { matchExpressions: [{ key: somekey, operator: NotIn, values: [never-used-value] }] }
`,
  'cilium.io/v2alpha1/CiliumBGPAdvertisement': `
apiVersion: cilium.io/v2alpha1
kind: CiliumBGPAdvertisement
metadata:
  name: old-adverts
spec:
  advertisements:
    - advertisementType: CiliumPodIPPool
      selector: { matchLabels: { pool: blue } }
`,
  'cilium.io/v2/CiliumNode': `
apiVersion: cilium.io/v2
kind: CiliumNode
metadata:
  name: worker-1
spec:
  addresses:
    - { type: InternalIP, ip: 192.168.1.11 }
    - { type: CiliumInternalIP, ip: 10.0.1.1 }
  health: { ipv4: 10.0.1.2 }
  encryption: { key: 0 }
  ipam:
    podCIDRs: [10.0.1.0/24]
    pools:
      requested: [{ pool: default, needed: { ipv4-addrs: 16 } }]
      allocated: [{ pool: default, cidrs: [10.0.1.0/27] }]
    pre-allocate: 8
  eni: { vpc-id: vpc-123, first-interface-index: 1 }
status:
  ipam:
    used:
      10.0.1.7: { owner: shop/web-0 }
    operator-status: { error: "" }
`,
  'cilium.io/v2/CiliumIdentity': `
apiVersion: cilium.io/v2
kind: CiliumIdentity
metadata:
  name: "12345"
  labels: { app: web, io.kubernetes.pod.namespace: shop }
security-labels:
  "k8s:app": web
  "k8s:io.kubernetes.pod.namespace": shop
  "k8s:io.cilium.k8s.policy.serviceaccount": default
  "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": shop
`,
  'cilium.io/v2/CiliumEndpoint': `
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata:
  name: web-0
  namespace: shop
status:
  id: 1234
  identity: { id: 12345, labels: ["k8s:app=web"] }
  networking:
    addressing: [{ ipv4: 10.0.1.7, ipv6: "fd00::7" }]
    node: 192.168.1.11
  state: ready
  named-ports: [{ name: http, port: 8080, protocol: TCP }]
  policy:
    ingress: { enforcing: true, state: enforcing }
    egress: { enforcing: false, state: non-enforcing }
`,
};
