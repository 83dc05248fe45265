// The provisioner's rights on one resource group where requests may create AKS clusters and GPU
// pools: deployed once per allowed resource group (main.bicep), nowhere else.
//
// The actions come from infra/permissions.json (customRoles.resourceGroup), the one list the
// sandbox enforces and docs/deploy.md shows. No built-in role fits: "Azure Kubernetes Service
// Contributor Role" has managedClusters read and write but no agent pools and no delete, and
// Contributor can change anything in the group.
@description('Principal id of the app\'s identity.')
param principalId string
@description('Also grant Kubernetes cluster admin through Azure RBAC (Entra ID clusters only).')
param grantKubernetesClusterAdmin bool

var permissions = loadJsonContent('../permissions.json')
var role = permissions.customRoles.resourceGroup
// Unique per group and identity, so two environments (or tenants' subscriptions) never collide
// on the tenant-wide role name.
var roleId = guid(resourceGroup().id, principalId, 'gpuprov-resource-group-role')

// Azure Kubernetes Service RBAC Cluster Admin b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b: Kubernetes
// rights on Entra ID clusters with Azure RBAC (create the device plugin's namespace and
// DaemonSet, the GPU Job, read nodes and pod logs). Only when requested.
var aksRbacClusterAdmin = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b')

resource clustersAndPools 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleId
  properties: {
    roleName: '${role.roleName} (${roleId})'
    description: role.description
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [for entry in role.actions: entry.action]
        notActions: []
      }
    ]
  }
}

// roleDefinitionId names the new definition's id, so ARM creates the assignment only after the
// definition (an implicit dependency); the name is deterministic, so re-running `azd provision`
// after a propagation delay is safe.
resource manageClustersAndPools 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, clustersAndPools.id)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: clustersAndPools.id
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
