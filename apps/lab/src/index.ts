export {
  CNI_VERSION,
  cniAdd,
  cniArgs,
  cniDel,
  labConfList,
  pluginConfig,
  resultIPv4,
} from './cni.js';
export type { CniConfList, CniPluginConf, PortMapping, RuntimeConfig } from './cni.js';
export { DATAPATH_IMPL, datapathInStatus } from './datapath.js';
export {
  CONTROL_NODE,
  DEFAULT_LAB,
  contextFile,
  currentLab,
  expectedComponents,
  labConnectOptions,
  labPrincipals,
  labDown,
  labExec,
  labLeftovers,
  labLogFile,
  labRotate,
  labStatus,
  labUp,
  pendingReadiness,
  requireLab,
  resolveLabName,
} from './lab.js';
export type { LabOptions, LabStatus, UpOptions } from './lab.js';
export { runDemo } from './demo.js';
export type { DemoReport } from './demo.js';
export {
  LabError,
  MAX_NODES,
  labIndex,
  netnsPrefix,
  planLab,
  podNetns,
  sandboxId,
  validateLabName,
} from './plan.js';
export type { LabPlan, NodePlan, RoutingMode } from './plan.js';
export { startPodServer } from './podserver.js';
export { labDir, labsRoot, listLabs, readManifest } from './state.js';
export type { LabManifest, ManagedProcess, PodRecord } from './state.js';
export {
  DEFAULT_HTTP_PORT,
  REPLICAS_ANNOTATION,
  TEMPLATE_ANNOTATION,
  expandTemplate,
  isTemplate,
  pickNode,
  podPorts,
  podProcess,
  surplusReplicas,
} from './workloads.js';
export type { PodProcess } from './workloads.js';
