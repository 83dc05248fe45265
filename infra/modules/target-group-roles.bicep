// The provisioner's rights on one resource group where requests may create AKS clusters and GPU
// pools: deployed once per allowed resource group (main.bicep), nowhere else.
@description('Principal id of the app\'s identity.')
param principalId string
@description('Also grant Kubernetes cluster admin through Azure RBAC (Entra ID clusters only).')
param grantKubernetesClusterAdmin bool

// Built-in roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/containers):
// Azure Kubernetes Service Contributor Role ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8: read, create
// and delete managed clusters and agent pools, and read the resource group (create-cluster,
// create-node-pool, cleanup, the reaper's tag checks and deletes).
var aksContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8')
// Azure Kubernetes Service Cluster User Role 4abbcc35-e782-43d8-92c5-2d3f1bd2253f:
// managedClusters/listClusterUserCredential/action (install-device-plugin, verify-gpus, run-job
// fetch the cluster's address, CA and, for local-account clusters, the user token).
var aksClusterUser = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4abbcc35-e782-43d8-92c5-2d3f1bd2253f')
// Azure Kubernetes Service RBAC Cluster Admin b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b: Kubernetes
// rights on Entra ID clusters with Azure RBAC (create the device plugin's namespace and
// DaemonSet, the GPU Job, read nodes and pod logs). Only when requested.
var aksRbacClusterAdmin = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b')

resource manageClusters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, aksContributor)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: aksContributor
  }
}

resource readClusterCredentials 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, aksClusterUser)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: aksClusterUser
  }
}

resource administerKubernetes 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantKubernetesClusterAdmin) {
  name: guid(resourceGroup().id, principalId, aksRbacClusterAdmin)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: aksRbacClusterAdmin
  }
}
