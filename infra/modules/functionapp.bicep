// The Function App on Flex Consumption (Python 3.11) running function_app.py, with every app
// setting the app reads (docs/settings.md). Connections are identity-based: each `<connection>__*`
// setting names a service and the user-assigned identity, never a key.
param name string
param planName string
param location string
param tags object
@description('Resource id of the user-assigned identity.')
param identityId string
@description('Client id of the user-assigned identity.')
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param serviceBusNamespaceName string
param eventsTopicName string
param appInsightsName string
param maximumInstanceCount int

// The app's policy and behaviour (shared/settings.py), fed by main.bicep's parameters.
param allowedSubscriptions string
param allowedResourceGroups string
param allowedLocations string
param allowedVmSizes string
param maxNodesPerRequest int
param maxGpusPerRequest int
param maxTtlHours int
param defaultBudget string
param maxBudget string
param owner string
param jobLogTailBytes int
param reaperSchedule string
param reaperDryRun bool
param reaperGraceHours int
param reaperSubscriptions string
@description('When the deployment assigned the identity\'s roles (ISO 8601).')
param rolesAssignedAt string
@description('The Durable Task Scheduler\'s endpoint; empty: Durable Functions on Azure Storage.')
param durableTaskSchedulerEndpoint string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// ARM endpoint of the cloud this is deployed to, without the trailing slash the app's default
// does not have.
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager
// The orchestration backend, as app settings overriding host.json's durableTask.storageProvider
// (host.json reference, "Override host.json values": AzureFunctionsJobHost__path__to__setting).
// Azure Storage: the extension's own defaults, said explicitly (provider `AzureStorage` on the
// AzureWebJobsStorage connection). Durable Task Scheduler: provider `azureManaged` (extension
// bundle 4.32.0 or later) on an identity-based connection string naming the scheduler's
// endpoint and this identity; the task hub is host.json's hubName.
var useScheduler = !empty(durableTaskSchedulerEndpoint)
var serviceBusNamespace = replace(replace(serviceBus.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Zone-redundant Flex Consumption is not offered in every region and needs ZRS storage; the app keeps no state on its instances (Durable state is in storage), so losing a zone delays steps and loses none.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222:The HTTP front door (submit, status, cancel) is meant to be called from outside; every route needs a function key (http_auth_level=FUNCTION). A VNet deployment adds a private endpoint instead.
  //checkov:skip=CKV_AZURE_17:Callers authenticate with function keys (or Entra ID in front), not client certificates.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales out per trigger from zero; nothing lives on an instance (Durable state is in storage), so there is no instance to fail over from.
  //checkov:skip=CKV_AZURE_78:Flex Consumption does not support siteConfig.ftpsState (the docs list it as unsupported on Flex); FTP publishing is off through the ftp basicPublishingCredentialsPolicies below (allow: false).
  //checkov:skip=CKV_AZURE_213:Health check takes long-lived web instances out of a load balancer; this app's work arrives through triggers and its Durable state is in storage, so work on a bad instance is retried on another. Failures show as failed events and in Application Insights.
  name: name
  location: location
  // azd finds the app to deploy `services.api` of azure.yaml to by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      // FUNCTIONS_WORKER_RUNTIME is not an app setting on Flex Consumption: the runtime is
      // functionAppConfig.runtime below.
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusNamespace }
        { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
        { name: 'ServiceBusConnection__clientId', value: identityClientId }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${identityClientId}' }
        { name: 'GPUPROV_ALLOWED_SUBSCRIPTIONS', value: allowedSubscriptions }
        { name: 'GPUPROV_ALLOWED_RESOURCE_GROUPS', value: allowedResourceGroups }
        { name: 'GPUPROV_ALLOWED_LOCATIONS', value: allowedLocations }
        { name: 'GPUPROV_ALLOWED_VM_SIZES', value: allowedVmSizes }
        { name: 'GPUPROV_MAX_NODES_PER_REQUEST', value: string(maxNodesPerRequest) }
        { name: 'GPUPROV_MAX_GPUS_PER_REQUEST', value: string(maxGpusPerRequest) }
        { name: 'GPUPROV_MAX_TTL_HOURS', value: string(maxTtlHours) }
        { name: 'GPUPROV_DEFAULT_BUDGET', value: defaultBudget }
        { name: 'GPUPROV_MAX_BUDGET', value: maxBudget }
        { name: 'GPUPROV_PRICES_ENDPOINT', value: 'https://prices.azure.com/api/retail/prices' }
        { name: 'GPUPROV_OWNER', value: owner }
        { name: 'GPUPROV_ARM_ENDPOINT', value: armEndpoint }
        { name: 'GPUPROV_JOB_LOG_TAIL_BYTES', value: string(jobLogTailBytes) }
        { name: 'GPUPROV_EVENTS_TOPIC', value: eventsTopicName }
        { name: 'GPUPROV_REAPER_SCHEDULE', value: reaperSchedule }
        { name: 'GPUPROV_REAPER_DRY_RUN', value: string(reaperDryRun) }
        { name: 'GPUPROV_REAPER_GRACE_HOURS', value: string(reaperGraceHours) }
        { name: 'GPUPROV_REAPER_SUBSCRIPTIONS', value: reaperSubscriptions }
        { name: 'GPUPROV_ROLES_ASSIGNED_AT', value: rolesAssignedAt }
        { name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type', value: useScheduler ? 'azureManaged' : 'AzureStorage' }
        { name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName', value: useScheduler ? 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING' : 'AzureWebJobsStorage' }
        { name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING', value: useScheduler ? 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}' : '' }
        // Traces go to Application Insights; console traces are for running locally.
        { name: 'GPUPROV_TRACE_CONSOLE', value: 'False' }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// No basic (user/password) publishing: azd deploys with the operator's Entra token.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: { allow: false }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
