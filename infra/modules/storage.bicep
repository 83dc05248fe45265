// Storage for the Functions host (AzureWebJobsStorage): the request queue and its poison queue,
// the Durable task hub `gpuprov` (its queues, tables and lease blobs are created by the host at
// start) and the container Flex Consumption deploys the app package from. Shared keys are off:
// only Entra identities holding a data role reach the data.
param name string
param location string
param tags object
@description('Principal id of the app\'s identity.')
param principalId string
@description('Log Analytics workspace receiving the queue and blob access logs.')
param workspaceId string

// The queue the app's storage queue trigger reads (functions/intake.py REQUESTS_QUEUE) and the
// queue the host moves a message to after maxDequeueCount failures (host.json: 5).
var requestsQueueName = 'provisioning-requests'
var poisonQueueName = '${requestsQueueName}-poison'
var deploymentContainerName = 'app-package'

// Built-in roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage):
// Storage Blob Data Owner b7e6dc6d-f1e8-4753-8033-0f276bb0955b: the host's lease and secret
// blobs, the Durable task hub's lease container and the deployment package (Flex Consumption
// and the Functions host need Owner, not Contributor, for blob leases with identity).
var storageBlobDataOwner = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
// Storage Queue Data Contributor 974c5e8b-45b9-4653-ba55-5f855dd0fb88: the queue trigger, the
// poison queue and the Durable control and work-item queues.
var storageQueueDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
// Storage Table Data Contributor 0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3: the Durable history and
// instances tables.
var storageTableDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35:The app has no virtual network, so it reaches storage over the public endpoint; every access needs an Entra token with a data role (shared keys are off). A VNet deployment sets Deny with private endpoints.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no virtual network to reach a private endpoint from; anonymous and key access are both off.
  //checkov:skip=CKV_AZURE_206:Holds only transient state (queued requests, Durable history); LRS is offered in every Flex Consumption region, ZRS is not. A lost request is re-submitted under the same request id, which starts it once.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource requestsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: requestsQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: storageBlobDataOwner
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: storageQueueDataContributor
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: storageTableDataContributor
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-access-logs'
  scope: queueService
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-access-logs'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

output name string = storage.name
output deploymentContainerName string = deploymentContainer.name
output requestsQueueName string = requestsQueue.name
output poisonQueueName string = poisonQueue.name
