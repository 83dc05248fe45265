// The Durable Task Scheduler as the orchestration backend (main.bicep orchestrationBackend =
// 'DurableTaskScheduler'; azd: GPUPROV_ORCHESTRATION_BACKEND): a scheduler, the task hub the
// app's host.json names (`gpuprov`) and the identity's data role on that task hub only. The
// Functions app selects it through app settings that override host.json's storageProvider
// (functionapp.bicep). Azure Storage stays the default backend.
//
// API version and required properties from azure-rest-api-specs
// (specification/durabletask/DurableTask.Management: 2025-11-01 is stable; `ipAllowlist` and
// `sku.name` are required; names match ^[a-zA-Z0-9-]{3,64}$).
param name string
param location string
param tags object
@description('Principal id of the app\'s identity.')
param principalId string
@description('The task hub: host.json\'s durableTask.hubName.')
param taskHubName string
@allowed(['Dedicated', 'Consumption'])
@description('Dedicated (GA: capacity units, zone redundancy from 3) or Consumption (pay per action).')
param skuName string = 'Dedicated'

// Built-in role (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration):
// Durable Task Data Contributor 0ad04412-c4d5-4796-b79c-f76d14c8d402 (dataActions
// Microsoft.DurableTask/*), on the task hub only. Not the older samples' 5f6a3c3e-… id.
var durableTaskDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0ad04412-c4d5-4796-b79c-f76d14c8d402')

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // Required, and an empty list refuses every caller. The app has no virtual network and
    // Flex Consumption has no fixed outbound addresses, so any address may connect; every call
    // still needs an Entra token of an identity holding a Durable Task role.
    ipAllowlist: ['0.0.0.0/0']
    sku: skuName == 'Dedicated' ? { name: skuName, capacity: 1 } : { name: skuName }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource useTaskHub 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(taskHub.id, principalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: durableTaskDataContributor
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
