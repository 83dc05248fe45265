// The AKS GPU provisioner on Azure: what `azd up` creates and `azd down` removes.
//
// One resource group holds the app (Flex Consumption, Python 3.11), its user-assigned identity,
// storage (queues, durable task hub, deployment package), Service Bus (events topic, requests
// queue) and monitoring. The identity's rights on the resource groups where GPU pools are created
// are granted by `modules/target-group-roles.bicep`, one deployment per allowed resource group.
// Every connection is identity-based: no key or connection string is stored anywhere.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region of the provisioner itself (a region that offers Flex Consumption).')
// The regions offering Flex Consumption, as the official azd Flex template allows them
// (Azure-Samples/functions-quickstart-python-http-azd infra/main.bicep, `param location`).
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'eastus2euap'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@minLength(1)
@description('''Resource groups where the provisioner may create AKS clusters and GPU pools,
comma-separated: `name` (in this subscription) or `subscriptionId/name`. They must exist; the
identity gets the AKS roles on each, and their names become GPUPROV_ALLOWED_RESOURCE_GROUPS.''')
param allowedResourceGroups string

@description('Subscription ids requests may target, comma-separated (GPUPROV_ALLOWED_SUBSCRIPTIONS). Empty: the subscriptions of allowedResourceGroups.')
param allowedSubscriptions string = ''

@description('Regions requests may target, comma-separated (GPUPROV_ALLOWED_LOCATIONS); empty allows any.')
param allowedLocations string = ''

@description('GPU VM sizes requests may use, comma-separated (GPUPROV_ALLOWED_VM_SIZES); empty allows every current size.')
param allowedVmSizes string = ''

@minValue(1)
@description('Most nodes one request may ask for (GPUPROV_MAX_NODES_PER_REQUEST).')
param maxNodesPerRequest int = 10

@minValue(1)
@description('Most GPUs one request may ask for (GPUPROV_MAX_GPUS_PER_REQUEST).')
param maxGpusPerRequest int = 16

@minValue(1)
@description('Longest time-to-live a request may give what it leaves running (GPUPROV_MAX_TTL_HOURS).')
param maxTtlHours int = 168

@description('Budget in US dollars of a request that names none (GPUPROV_DEFAULT_BUDGET); 0: none.')
param defaultBudget string = '0'

@description('Highest budget in US dollars a request may name (GPUPROV_MAX_BUDGET); 0: no maximum.')
param maxBudget string = '0'

@maxLength(63)
@description('Value of the gpuprov-owner tag on what this deployment creates (GPUPROV_OWNER). Empty: gpuprov-<environmentName>, so two deployments never reap each other\'s pools.')
param owner string = ''

@minValue(1024)
@maxValue(131072)
@description('Most bytes of a job\'s pod log kept in events (GPUPROV_JOB_LOG_TAIL_BYTES).')
param jobLogTailBytes int = 16384

@minLength(1)
@description('NCRONTAB schedule (with seconds) of the reaper (GPUPROV_REAPER_SCHEDULE).')
param reaperSchedule string = '0 */15 * * * *'

@description('True: the reaper only reports what it would delete (GPUPROV_REAPER_DRY_RUN).')
param reaperDryRun bool = false

@minValue(0)
@description('Hours the reaper waits before deleting an unexpired orphan (GPUPROV_REAPER_GRACE_HOURS).')
param reaperGraceHours int = 2

@description('Subscription ids the reaper scans, comma-separated (GPUPROV_REAPER_SUBSCRIPTIONS); empty: the allowed subscriptions.')
param reaperSubscriptions string = ''

@description('''Grant the identity a custom role at this subscription's scope that can only read and
register preview features and register resource providers (the register-features step). False:
an administrator registers the features a request names before it is submitted.''')
param grantFeatureRegistration bool = false

@description('''Grant "Azure Kubernetes Service RBAC Cluster Admin" on the allowed resource groups, needed
only for requests with `entraId: true` (Entra ID clusters with Azure RBAC have no local accounts,
so the identity needs a Kubernetes role to install the device plugin and run the job).''')
param grantKubernetesClusterAdmin bool = false

@allowed(['AzureStorage', 'DurableTaskScheduler'])
@description('''Where Durable Functions keeps orchestrations (GPUPROV_ORCHESTRATION_BACKEND): AzureStorage
(queues and tables in the app's storage account) or DurableTaskScheduler (a Durable Task
Scheduler and task hub, Azure's managed engine for scale-out).''')
param orchestrationBackend string = 'AzureStorage'

@maxValue(1000)
@minValue(1)
@description('Most instances Flex Consumption scales the app out to.')
param maximumInstanceCount int = 40

@description('''Leave unset: when this deployment runs. The app retries AuthorizationFailed for 10
minutes after it (GPUPROV_ROLES_ASSIGNED_AT), while the role assignments it made propagate.''')
param deployedAt string = utcNow('o')

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

// `name` or `subscriptionId/name`, blanks dropped, in the order given.
var targetEntries = filter(split(allowedResourceGroups, ','), entry => !empty(trim(entry)))
var targetResourceGroups = [for entry in targetEntries: contains(entry, '/') ? { subscriptionId: trim(split(entry, '/')[0]), name: trim(split(entry, '/')[1]) } : { subscriptionId: subscription().subscriptionId, name: trim(entry) }]
var targetGroupNames = [for group in targetResourceGroups: group.name]
var targetGroupSubscriptions = [for group in targetResourceGroups: group.subscriptionId]
var ownerTag = empty(owner) ? take('gpuprov-${environmentName}', 63) : owner
var targetSubscriptions = join(union(targetGroupSubscriptions, []), ',')
var useScheduler = orchestrationBackend == 'DurableTaskScheduler'
// host.json's durableTask.hubName: the Azure Storage task hub's prefix, or the scheduler's hub.
var taskHubName = 'gpuprov'

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: resourceGroup
  params: {
    name: 'id-gpuprov-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: resourceGroup
  params: {
    workspaceName: 'log-gpuprov-${resourceToken}'
    appInsightsName: 'appi-gpuprov-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: resourceGroup
  params: {
    name: 'stgpuprov${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    workspaceId: monitoring.outputs.workspaceId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: resourceGroup
  params: {
    name: 'sb-gpuprov-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    workspaceId: monitoring.outputs.workspaceId
  }
}

module durableTask 'modules/durabletask.bicep' = if (useScheduler) {
  name: 'durabletask'
  scope: resourceGroup
  params: {
    name: 'dts-gpuprov-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    taskHubName: taskHubName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: resourceGroup
  params: {
    name: 'func-gpuprov-${resourceToken}'
    planName: 'plan-gpuprov-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    serviceBusNamespaceName: serviceBus.outputs.name
    eventsTopicName: serviceBus.outputs.eventsTopicName
    appInsightsName: monitoring.outputs.appInsightsName
    maximumInstanceCount: maximumInstanceCount
    allowedSubscriptions: empty(allowedSubscriptions) ? targetSubscriptions : allowedSubscriptions
    allowedResourceGroups: join(targetGroupNames, ',')
    allowedLocations: allowedLocations
    allowedVmSizes: allowedVmSizes
    maxNodesPerRequest: maxNodesPerRequest
    maxGpusPerRequest: maxGpusPerRequest
    maxTtlHours: maxTtlHours
    defaultBudget: defaultBudget
    maxBudget: maxBudget
    owner: ownerTag
    jobLogTailBytes: jobLogTailBytes
    reaperSchedule: reaperSchedule
    reaperDryRun: reaperDryRun
    reaperGraceHours: reaperGraceHours
    reaperSubscriptions: reaperSubscriptions
    rolesAssignedAt: deployedAt
    durableTaskSchedulerEndpoint: useScheduler ? durableTask.outputs.endpoint : ''
  }
  // The app (re)starts with its new settings only once its roles exist; ARM may still take
  // minutes to apply them, which the app rides out (GPUPROV_ROLES_ASSIGNED_AT).
  dependsOn: [targetGroupRoles, featureRegistrationRole, capacityReaderRole]
}

// The AKS roles, only where requests may create clusters and pools.
module targetGroupRoles 'modules/target-group-roles.bicep' = [
  for group in targetResourceGroups: {
    name: 'gpuprov-roles-${uniqueString(group.subscriptionId, group.name, resourceToken)}'
    scope: az.resourceGroup(group.subscriptionId, group.name)
    params: {
      principalId: identity.outputs.principalId
      grantKubernetesClusterAdmin: grantKubernetesClusterAdmin
    }
  }
]

module featureRegistrationRole 'modules/subscription-role.bicep' = if (grantFeatureRegistration) {
  name: 'gpuprov-feature-registration-${resourceToken}'
  params: {
    principalId: identity.outputs.principalId
    roleKey: 'subscription'
  }
}

// The preflight's Compute reads (SKUs, vCPU usages), always: without them quota is not checked.
module capacityReaderRole 'modules/subscription-role.bicep' = {
  name: 'gpuprov-capacity-reader-${resourceToken}'
  params: {
    principalId: identity.outputs.principalId
    roleKey: 'capacity'
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output GPUPROV_EVENTS_TOPIC string = serviceBus.outputs.eventsTopicName
output GPUPROV_OWNER string = ownerTag
output GPUPROV_ORCHESTRATION_BACKEND string = orchestrationBackend
output PROVISIONER_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output PROVISIONER_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
